//! Input rules shared by every domain, as pure functions: each returns the
//! stored form or BAD_USER_INPUT naming the field.
//!
//! Every string a client sends passes one of these before it reaches the
//! database or an e-mail: stored text through `text`/`optional_text` (one
//! line) or `multiline`/`optional_multiline_text`, filters and look-ups
//! through `lookup`/`search_words`/`handle_key`, instants through `instant`.
//! Control characters never pass (PostgreSQL refuses NUL in text, and CR/LF
//! in a title would reach an e-mail's Subject), nor does anything longer than
//! its field holds (SQLite refuses LIKE patterns over 50,000 bytes).

use chrono::{DateTime, Datelike, Utc};
use unicode_normalization::char::is_combining_mark;

use crate::error::{ApiError, ApiResult};

pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 128;
/// A search: at most this many characters, of which the first
/// `SEARCH_WORDS` words count.
pub const SEARCH_MAX: usize = 1_000;
pub const SEARCH_WORDS: usize = 10;
/// A search word counts by its first this many characters, on both
/// databases: SQLite's full-text index holds the beginnings of every word up
/// to this length (migration m20261126_000005), each one index entry.
pub const SEARCH_WORD_CHARS: usize = 16;
/// The longest e-mail address (RFC 5321's path limit, less the brackets).
pub const EMAIL_MAX: usize = 254;
/// The years an instant may fall in, on both databases: four-digit years
/// only, since beyond them chrono's arithmetic can overflow, SQLite's text
/// timestamps stop sorting and PostgreSQL's driver refuses some.
pub const FIRST_YEAR: i32 = 1970;
pub const LAST_YEAR: i32 = 9999;

/// Refuses control characters: all of them on one line, all but `\n` and
/// `\t` in multi-line text.
fn no_controls(field: &str, value: &str, multiline: bool) -> ApiResult<()> {
    let allowed = |c: char| multiline && (c == '\n' || c == '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        let what = if multiline {
            "control characters other than line breaks and tabs"
        } else {
            "line breaks or control characters"
        };
        return Err(ApiError::bad_input(
            field,
            format!("{field} must not contain {what}"),
        ));
    }
    Ok(())
}

fn length(field: &str, value: &str, min: usize, max: usize) -> ApiResult<()> {
    if (min..=max).contains(&value.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::bad_input(
            field,
            format!("{field} must be {min} to {max} characters"),
        ))
    }
}

/// A plausible address: an RFC 5322 addr-spec as lettre parses it (no
/// display name, no angle brackets, so what is checked is what is mailed),
/// with a dotted domain. Returns it lower-cased (the stored and compared form).
pub fn email(field: &str, raw: &str) -> ApiResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= EMAIL_MAX
        && !email.chars().any(char::is_control)
        && email.parse::<lettre::Address>().is_ok_and(|address| {
            let domain = address.domain();
            domain.contains('.') && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(ApiError::bad_input(
            field,
            format!("{raw:?} is not a valid e-mail address"),
        ))
    }
}

/// A new password (NIST SP 800-63B): 10 to 128 characters, not only
/// whitespace, not on a list of common passwords (compared lower-case, so
/// "Password123" counts), and not the member's own handle or e-mail.
pub fn password(field: &str, password: &str, handle: &str, email: &str) -> ApiResult<()> {
    length(field, password, PASSWORD_MIN, PASSWORD_MAX)?;
    no_controls(field, password, false)?;
    let refuse = |why: &str| Err(ApiError::bad_input(field, format!("{field} {why}")));
    let trimmed = password.trim();
    if trimmed.is_empty() {
        return refuse("cannot be only spaces");
    }
    let lower = trimmed.to_lowercase();
    if passwords::analyzer::is_common_password(trimmed)
        || passwords::analyzer::is_common_password(&lower)
    {
        return refuse("is too common; choose one that is harder to guess");
    }
    if lower == handle.trim().to_lowercase() || lower == email.trim().to_lowercase() {
        return refuse("must differ from your handle and e-mail");
    }
    Ok(())
}

/// A handle as stored and looked up (handles are case-insensitive); `None`
/// when it cannot be anyone's handle, so a look-up matches nothing.
pub fn handle_key(raw: &str) -> Option<String> {
    handle(raw).ok()
}

/// 3 to 30 of `a-z 0-9 _`, case-insensitive; returns the stored lower-case form.
pub fn handle(raw: &str) -> ApiResult<String> {
    let handle = raw.trim().to_ascii_lowercase();
    let valid = (3..=30).contains(&handle.len())
        && handle
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(handle)
    } else {
        Err(ApiError::bad_input(
            "handle",
            "handle must be 3 to 30 of a-z, 0-9 and _",
        ))
    }
}

/// Trimmed one-line text of `min..=max` characters.
pub fn text(field: &str, raw: &str, min: usize, max: usize) -> ApiResult<String> {
    let value = raw.trim();
    length(field, value, min, max)?;
    no_controls(field, value, false)?;
    Ok(value.to_owned())
}

/// An optional one-line profile or meet text: blank means cleared.
pub fn optional_text(field: &str, raw: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(value) => text(field, value, 1, max).map(Some),
    }
}

/// Multi-line text as written, with line breaks and tabs; CRLF becomes LF
/// (what some clients send for a line break), every other control character
/// is refused.
pub fn multiline(field: &str, raw: &str) -> ApiResult<String> {
    let value = raw.replace("\r\n", "\n");
    no_controls(field, &value, true)?;
    Ok(value)
}

/// An optional multi-line text (a description, a bio, a message), trimmed:
/// blank means cleared.
pub fn optional_multiline_text(
    field: &str,
    raw: Option<&str>,
    max: usize,
) -> ApiResult<Option<String>> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(value) => {
            length(field, value, 1, max)?;
            multiline(field, value).map(Some)
        }
    }
}

/// A string a filter or look-up compares with stored values: trimmed, one
/// line, at most `max` characters (what the compared field can hold).
pub fn lookup(field: &str, raw: &str, max: usize) -> ApiResult<String> {
    text(field, raw, 0, max)
}

/// The words of a search, lower-case: at most `SEARCH_MAX` characters, of
/// which the first `SEARCH_WORDS` words count, each by its first
/// `SEARCH_WORD_CHARS` characters. A word is a run of letters, digits and
/// combining marks (as PostgreSQL's parser reads words: "हिन्दी" is one);
/// everything else only separates words, so quotes, operators and wildcards
/// are never more than that. `None` for a blank search (no filter); no words
/// at all (say "%%" or "🙂") find nothing.
pub fn search_words(field: &str, raw: &str) -> ApiResult<Option<Vec<String>>> {
    let text = lookup(field, raw, SEARCH_MAX)?;
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        text.split(|c: char| !(c.is_alphanumeric() || is_combining_mark(c)))
            .filter(|word| !word.is_empty())
            .take(SEARCH_WORDS)
            .map(|word| {
                word.to_lowercase()
                    .chars()
                    .take(SEARCH_WORD_CHARS)
                    .collect()
            })
            .collect(),
    ))
}

/// Whether an instant falls in the years the API takes (`FIRST_YEAR` to
/// `LAST_YEAR`).
pub fn in_range(at: DateTime<Utc>) -> bool {
    (FIRST_YEAR..=LAST_YEAR).contains(&at.year())
}

/// An instant from a client (a meet's time, a filter's bound).
pub fn instant(field: &str, at: DateTime<Utc>) -> ApiResult<DateTime<Utc>> {
    if in_range(at) {
        Ok(at)
    } else {
        Err(ApiError::bad_input(
            field,
            format!("{field} must fall between the years {FIRST_YEAR} and {LAST_YEAR}"),
        ))
    }
}

/// An http(s) URL (for avatars): anything else could smuggle a script into a
/// client that renders it.
pub fn url(field: &str, raw: Option<&str>) -> ApiResult<Option<String>> {
    let Some(value) = optional_text(field, raw, 2048)? else {
        return Ok(None);
    };
    let lower = value.to_ascii_lowercase();
    let host = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match host {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !value.chars().any(char::is_whitespace) =>
        {
            Ok(Some(value))
        }
        _ => Err(ApiError::bad_input(
            field,
            format!("{field} must be an http or https URL"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("email", " Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@@example.com",
            "ada@.com",
            // What a mailer would read as another address, or fail on.
            "x<victim@evil.example>",
            "name@example.com>",
            "Ada <ada@example.com>",
            "ada@example.com\r\nBcc: victim@evil.example",
            "ada\0@example.com",
        ] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn handles() {
        assert_eq!(handle("Ada_Lovelace").unwrap(), "ada_lovelace");
        for bad in ["ab", "a-b-c", "ada lovelace", &"a".repeat(31), "adé"] {
            assert!(handle(bad).is_err(), "{bad}");
        }
        assert_eq!(handle_key(" Ada ").as_deref(), Some("ada"));
        assert_eq!(handle_key("ada\0"), None);
    }

    #[test]
    fn passwords() {
        let ok = |p: &str| password("password", p, "ada", "ada@example.com");
        assert!(ok("123456789").is_err(), "too short");
        assert!(ok("correct horse battery").is_ok());
        assert!(ok(&"x".repeat(129)).is_err(), "too long");
        assert!(ok("          ").is_err(), "only spaces");
        assert!(ok("\t\t\t\t\t\t\t\t\t\t").is_err(), "control characters");
        for common in ["password123", "qwertyuiop", "Password123", "1234567890"] {
            assert!(ok(common).is_err(), "{common}");
        }
        let own = |p: &str| password("password", p, "ada_lovelace", "ada@example.com");
        assert!(own("ADA_LOVELACE").is_err(), "the handle");
        assert!(own("Ada@Example.com").is_err(), "the e-mail");
    }

    #[test]
    fn texts() {
        assert!(text("displayName", "  ", 1, 80).is_err());
        assert_eq!(text("title", " Drinks ", 1, 80).unwrap(), "Drinks");
        for bad in [
            "Drinks\r\nBcc: x@evil.example",
            "a\0b",
            "tab\there",
            "\u{7f}",
        ] {
            let err = text("title", bad, 1, 80).unwrap_err();
            assert!(
                matches!(&err, ApiError::BadInput { field: Some(f), .. } if f == "title"),
                "{bad}"
            );
        }
        assert_eq!(optional_text("bio", Some("  "), 10).unwrap(), None);
        assert_eq!(
            multiline("body", "one\r\ntwo\tthree\n").unwrap(),
            "one\ntwo\tthree\n"
        );
        assert!(multiline("body", "a\0b").is_err());
        assert!(multiline("body", "a\rb").is_err());
        assert!(optional_multiline_text("bio", Some(&"x".repeat(11)), 10).is_err());
        assert!(url("avatarUrl", Some("javascript:alert(1)")).is_err());
        assert!(url("avatarUrl", Some("https://cdn.example.com/a.png")).is_ok());
    }

    #[test]
    fn look_ups_and_searches_are_bounded() {
        assert_eq!(lookup("region", "  ", 80).unwrap(), "");
        assert!(lookup("region", "a\0", 80).is_err());
        assert!(lookup("region", &"a".repeat(81), 80).is_err());
        let words = |raw: &str| search_words("search", raw).unwrap();
        assert_eq!(
            words(" Rose  CROWN "),
            Some(vec!["rose".into(), "crown".into()])
        );
        assert_eq!(words("   "), None, "blank: no filter");
        let eleven = "w ".repeat(11);
        assert_eq!(words(&eleven).map(|w| w.len()), Some(SEARCH_WORDS));
        assert!(search_words("search", &"x".repeat(SEARCH_MAX + 1)).is_err());
        assert!(search_words("search", "rose\0").is_err());
    }

    #[test]
    fn search_words_are_runs_of_letters_and_digits() {
        let words = |raw: &str| search_words("search", raw).unwrap().unwrap();
        assert_eq!(
            words(r#""brew" & (pub | !bar) NEAR/2 x:* 100% a_b -c"#),
            ["brew", "pub", "bar", "near", "2", "x", "100", "a", "b", "c"]
        );
        assert_eq!(words("Café ÜBER 🙂 北京"), ["café", "über", "北京"]);
        assert_eq!(words("हिन्दी cafe\u{301}s"), ["हिन्दी", "cafe\u{301}s"]);
        assert_eq!(words("%% _ 🙂 ' OR 1=1 --"), ["or", "1", "1"]);
        assert!(words("%%_🙂*").is_empty(), "no words: finds nothing");
        assert_eq!(words("Internationalisation"), ["internationalisa"]);
        assert_eq!(words(&"brew ".repeat(200)).len(), SEARCH_WORDS);
    }

    #[test]
    fn instants_stay_within_four_digit_years() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert!(instant("startsAfter", at("2026-11-26T00:00:00Z")).is_ok());
        assert!(instant("startsAfter", at("9999-12-31T23:59:59Z")).is_ok());
        assert!(instant("startsAfter", at("+99999-01-01T00:00:00Z")).is_err());
        assert!(instant("startsAfter", at("-5000-01-01T00:00:00Z")).is_err());
        assert!(instant("startsAfter", at("1969-12-31T23:59:59Z")).is_err());
    }
}
