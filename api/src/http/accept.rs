//! The `Accept` header, as RFC 9110 reads it: media ranges with q-values,
//! the most preferred first.

use axum::http::{HeaderMap, header};

/// The media ranges a client accepts, lower-cased, highest q-value first
/// (ties keep the client's order); ranges with `q=0` are refused, so left
/// out. `None` when the request has no usable `Accept` header.
pub fn preferences(headers: &HeaderMap) -> Option<Vec<String>> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    let mut ranges: Vec<(String, u16)> = accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|param| param.trim().strip_prefix("q="))
                .find_map(quality)
                .unwrap_or(1000);
            (!media.is_empty() && quality > 0).then_some((media, quality))
        })
        .collect();
    // Stable: equal q-values keep the order the client wrote.
    ranges.sort_by_key(|(_, quality)| std::cmp::Reverse(*quality));
    Some(ranges.into_iter().map(|(media, _)| media).collect())
}

/// A q-value in thousandths (`0.9` is 900); `None` when malformed, which
/// makes the range count as `q=1`, as lenient servers read it.
fn quality(text: &str) -> Option<u16> {
    let value: f32 = text.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&value)
        .then(|| (value * 1000.0).round() as u16)
}

/// Whether a browser is asking for a page: `text/html` is acceptable and
/// preferred to JSON.
pub fn wants_html(headers: &HeaderMap) -> bool {
    preferences(headers).is_some_and(|ranges| {
        ranges
            .iter()
            .find(|media| matches!(media.as_str(), "text/html" | "application/json"))
            .is_some_and(|media| media == "text/html")
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn q_values_order_the_ranges_and_zero_refuses() {
        assert_eq!(
            preferences(&accept(
                "application/graphql-response+json;q=0.9, application/json"
            )),
            Some(vec![
                "application/json".to_owned(),
                "application/graphql-response+json".to_owned()
            ])
        );
        assert_eq!(
            preferences(&accept("text/html;q=0, application/json; charset=utf-8")),
            Some(vec!["application/json".to_owned()])
        );
        assert_eq!(
            preferences(&accept("a/b;q=0.5, c/d;q=0.5, e/f")),
            Some(vec!["e/f".to_owned(), "a/b".to_owned(), "c/d".to_owned()]),
            "ties keep the client's order"
        );
        assert_eq!(
            preferences(&accept("a/b;q=7, c/d;q=0.8")),
            Some(vec!["a/b".to_owned(), "c/d".to_owned()]),
            "a malformed q counts as 1"
        );
        assert_eq!(preferences(&HeaderMap::new()), None);
    }

    #[test]
    fn browsers_want_html_and_api_clients_do_not() {
        assert!(wants_html(&accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants_html(&accept("application/json, text/html")));
        assert!(!wants_html(&accept("*/*")));
        assert!(!wants_html(&HeaderMap::new()));
    }
}
