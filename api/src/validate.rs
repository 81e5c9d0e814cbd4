//! Input rules shared by every domain, as pure functions: each returns the
//! stored form or BAD_USER_INPUT naming the field.

use crate::error::{ApiError, ApiResult};

pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 128;

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no
/// spaces. Returns it lower-cased (the stored and compared form).
pub fn email(field: &str, raw: &str) -> ApiResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(ApiError::bad_input(
            field,
            format!("{raw:?} is not a valid e-mail address"),
        ))
    }
}

pub fn password(field: &str, password: &str) -> ApiResult<()> {
    let length = password.chars().count();
    if (PASSWORD_MIN..=PASSWORD_MAX).contains(&length) {
        Ok(())
    } else {
        Err(ApiError::bad_input(
            field,
            format!("password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
        ))
    }
}

/// A handle as stored and looked up (handles are case-insensitive).
pub fn handle_key(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

/// 3 to 30 of `a-z 0-9 _`, case-insensitive; returns the stored lower-case form.
pub fn handle(raw: &str) -> ApiResult<String> {
    let handle = handle_key(raw);
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

/// Trimmed text of `min..=max` characters.
pub fn text(field: &str, raw: &str, min: usize, max: usize) -> ApiResult<String> {
    let value = raw.trim();
    let length = value.chars().count();
    if (min..=max).contains(&length) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::bad_input(
            field,
            format!("{field} must be {min} to {max} characters"),
        ))
    }
}

/// An optional profile text: blank means cleared.
pub fn optional_text(field: &str, raw: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(value) => text(field, value, 1, max).map(Some),
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
    }

    #[test]
    fn passwords_and_texts() {
        assert!(password("password", "123456789").is_err());
        assert!(password("password", "1234567890").is_ok());
        assert!(password("password", &"x".repeat(129)).is_err());
        assert!(text("displayName", "  ", 1, 80).is_err());
        assert_eq!(optional_text("bio", Some("  "), 10).unwrap(), None);
        assert!(url("avatarUrl", Some("javascript:alert(1)")).is_err());
        assert!(url("avatarUrl", Some("https://cdn.example.com/a.png")).is_ok());
    }
}
