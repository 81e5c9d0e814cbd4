//! Automatic persisted queries, as Apollo's clients speak them: a request may
//! carry `extensions.persistedQuery = {version: 1, sha256Hash}` instead of
//! its query; the server runs the query it registered under that hash, or
//! answers `PERSISTED_QUERY_NOT_FOUND` so the client sends hash and query
//! together once. Resolved per request, before parsing, for HTTP (POST and
//! GET) and WebSocket alike; nothing per field (unlike async-graphql's
//! extension, which would put every field through an extension chain).

use async_graphql::Request;
use quick_cache::{Weighter, sync::Cache};
use sha2::{Digest, Sha256};

use crate::{error::ApiError, graphql::limits};

/// Registered queries by SHA-256, bounded by their total size in bytes.
pub struct PersistedQueries {
    queries: Cache<[u8; 32], std::sync::Arc<str>, QueryBytes>,
}

#[derive(Clone)]
struct QueryBytes;

impl Weighter<[u8; 32], std::sync::Arc<str>> for QueryBytes {
    fn weight(&self, _hash: &[u8; 32], query: &std::sync::Arc<str>) -> u64 {
        // The key and the entry's own bookkeeping, besides the text.
        query.len() as u64 + 64
    }
}

impl PersistedQueries {
    /// A cache holding at most `budget_bytes` of query text.
    pub fn new(budget_bytes: u64) -> Self {
        // quick_cache sizes its tables from the expected count: queries of
        // a few KiB each.
        let expected = usize::try_from(budget_bytes / 2048)
            .unwrap_or(usize::MAX)
            .max(16);
        Self {
            queries: Cache::with_weighter(expected, budget_bytes, QueryBytes),
        }
    }

    /// Fills in the query of a request that names one by hash, or registers
    /// the query a request sends with its hash. A request without
    /// `persistedQuery` is left as it is; the extension is removed once
    /// handled, so a second call does nothing.
    pub fn resolve(&self, request: &mut Request) -> Result<(), ApiError> {
        let Some(extension) = request.extensions.remove("persistedQuery") else {
            return Ok(());
        };
        let extension = serde_json::to_value(&extension)
            .ok()
            .and_then(|value| serde_json::from_value::<Extension>(value).ok())
            .ok_or_else(|| {
                ApiError::bad_input(
                    "extensions.persistedQuery",
                    "expected {\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}",
                )
            })?;
        if extension.version != 1 {
            return Err(ApiError::bad_input(
                "extensions.persistedQuery.version",
                "only version 1 of persisted queries is supported",
            ));
        }
        let hash = parse_hash(&extension.sha256_hash).ok_or_else(|| {
            ApiError::bad_input(
                "extensions.persistedQuery.sha256Hash",
                "the hash must be 64 hexadecimal digits",
            )
        })?;
        if request.query.is_empty() {
            let query = self
                .queries
                .get(&hash)
                .ok_or(ApiError::PersistedQueryNotFound)?;
            request.query = query.to_string();
            return Ok(());
        }
        if <[u8; 32]>::from(Sha256::digest(request.query.as_bytes())) != hash {
            return Err(ApiError::bad_input(
                "extensions.persistedQuery.sha256Hash",
                "the hash is not the SHA-256 of the query",
            ));
        }
        // A document the server would refuse unparsed is not worth keeping.
        if request.query.len() <= limits::MAX_DOCUMENT_BYTES {
            self.queries.insert(hash, request.query.as_str().into());
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct Extension {
    version: u32,
    #[serde(rename = "sha256Hash")]
    sha256_hash: String,
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: &str = "{ __typename }";

    fn hash_of(query: &str) -> String {
        Sha256::digest(query.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn request(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        request.extensions.insert(
            "persistedQuery".into(),
            async_graphql::Value::from_json(serde_json::json!({
                "version": 1, "sha256Hash": hash
            }))
            .unwrap(),
        );
        request
    }

    #[test]
    fn unknown_then_registered_then_by_hash_alone() {
        let cache = PersistedQueries::new(1 << 20);
        let hash = hash_of(QUERY);
        assert!(matches!(
            cache.resolve(&mut request("", &hash)),
            Err(ApiError::PersistedQueryNotFound)
        ));
        cache.resolve(&mut request(QUERY, &hash)).unwrap();
        let mut by_hash = request("", &hash);
        cache.resolve(&mut by_hash).unwrap();
        assert_eq!(by_hash.query, QUERY);
        assert!(by_hash.extensions.is_empty(), "handled once");
    }

    #[test]
    fn a_hash_that_is_not_the_querys_is_refused() {
        let cache = PersistedQueries::new(1 << 20);
        let wrong = hash_of("{ other }");
        assert!(matches!(
            cache.resolve(&mut request(QUERY, &wrong)),
            Err(ApiError::BadInput { .. })
        ));
        for malformed in ["", "zz", &"g".repeat(64), &"é".repeat(32)] {
            assert!(matches!(
                cache.resolve(&mut request(QUERY, malformed)),
                Err(ApiError::BadInput { .. })
            ));
        }
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let cache = PersistedQueries::new(10_000);
        for n in 0..1_000 {
            let query = format!("{{ a{n}: __typename }}");
            cache
                .resolve(&mut request(&query, &hash_of(&query)))
                .unwrap();
        }
        assert!(cache.queries.weight() <= 10_000);
        assert!(cache.queries.len() < 1_000);
    }
}
