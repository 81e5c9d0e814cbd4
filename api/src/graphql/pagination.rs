//! Relay cursor connections at the GraphQL edge: the client's `first` and
//! `after` checked, and a service's [`Paged`] rows turned into a connection.
//! The order of each list and its keys live in `crate::keyset`.

use async_graphql::{
    OutputType,
    connection::{Connection, Edge},
};

use crate::{
    error::{ApiError, ApiResult},
    keyset::{CursorKey, Page, Paged},
};

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// The complexity of a connection field: its page size times what each row
/// selects, so nested pages multiply (100 meets x 100 attendees x ...)
/// and the schema's complexity limit stops them.
pub fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    first.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE) as usize * child_complexity
}

/// Validates `first` and `after` as the contract says: `first` defaults to
/// 20, is at least 0 and at most 100; `after` must be a cursor we issued.
pub fn page<K: CursorKey>(first: Option<i32>, after: Option<String>) -> ApiResult<Page<K>> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(0..=MAX_PAGE_SIZE).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("first must be between 0 and {MAX_PAGE_SIZE}"),
        ));
    }
    let after = match after {
        None => None,
        Some(raw) => Some(
            K::decode(&raw).ok_or_else(|| ApiError::bad_input("after", "not a valid cursor"))?,
        ),
    };
    Ok(Page {
        first: first as u64,
        after,
    })
}

/// The connection of a page, each row made a node by `node`.
pub fn connection<T, K: CursorKey, N: OutputType>(
    paged: Paged<T, K>,
    node: impl FnMut(T) -> N,
) -> Connection<String, N> {
    let mut node = node;
    let mut connection = Connection::new(false, paged.has_next);
    connection.edges = paged
        .rows
        .into_iter()
        .map(|(key, row)| Edge::new(key.encode(), node(row)))
        .collect();
    connection
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyset::TimeKey;

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page::<TimeKey>(None, None).unwrap().first, 20);
        assert!(page::<TimeKey>(Some(101), None).is_err());
        assert!(page::<TimeKey>(Some(-1), None).is_err());
        assert!(page::<TimeKey>(Some(100), None).is_ok());
        assert!(page::<TimeKey>(Some(10), Some("nope".into())).is_err());
    }
}
