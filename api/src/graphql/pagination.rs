//! Relay cursor connections on keyset cursors: a cursor encodes the sort key
//! of the last row (e.g. startsAt and id), never an offset, so a page never
//! repeats or skips a row while others are inserted or removed.

use async_graphql::{
    OutputType,
    connection::{Connection, Edge},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, Order, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{ExprTrait, SimpleExpr},
};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// A page request: how many rows, after which sort key.
#[derive(Clone, Debug)]
pub struct Page<K> {
    pub first: u64,
    pub after: Option<K>,
}

impl<K> Page<K> {
    /// Rows to fetch: one more than the page, to learn whether another follows.
    pub fn limit(&self) -> u64 {
        self.first + 1
    }
}

/// A sort key that a cursor can carry.
pub trait CursorKey: Sized {
    fn encode(&self) -> String;
    fn decode(raw: &str) -> Option<Self>;
}

/// Full precision (SQLite keeps nanoseconds; a coarser cursor would land
/// between a row and itself and repeat it).
fn encode_time(at: DateTime<Utc>) -> String {
    format!("{}.{:09}", at.timestamp(), at.timestamp_subsec_nanos())
}

fn decode_time(raw: &str) -> Option<DateTime<Utc>> {
    let (secs, nanos) = raw.split_once('.')?;
    DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)
}

/// (timestamp, id): the key of every time-ordered list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeKey {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl CursorKey for TimeKey {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", encode_time(self.at), self.id))
    }

    fn decode(raw: &str) -> Option<Self> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        let (at, id) = text.split_once('|')?;
        Some(Self {
            at: decode_time(at)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// (rank, timestamp, id): lists with a leading group, such as attendees with
/// GOING first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankedTimeKey {
    pub rank: i32,
    pub key: TimeKey,
}

impl CursorKey for RankedTimeKey {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}|{}|{}",
            self.rank,
            encode_time(self.key.at),
            self.key.id
        ))
    }

    fn decode(raw: &str) -> Option<Self> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        let mut parts = text.splitn(3, '|');
        let rank = parts.next()?.parse().ok()?;
        let at = decode_time(parts.next()?)?;
        let id = Uuid::parse_str(parts.next()?).ok()?;
        Some(Self {
            rank,
            key: TimeKey { at, id },
        })
    }
}

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

/// Which way a list runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Ascending,
    Descending,
}

/// The keyset condition "(time, id) comes after `key`" in `direction`.
pub fn after_time_key(
    time: impl ColumnTrait,
    id: impl ColumnTrait,
    key: &TimeKey,
    direction: Direction,
) -> Condition {
    let (beyond_time, beyond_id) = match direction {
        Direction::Ascending => (time.gt(key.at), id.gt(key.id)),
        Direction::Descending => (time.lt(key.at), id.lt(key.id)),
    };
    Condition::any()
        .add(beyond_time)
        .add(Condition::all().add(time.eq(key.at)).add(beyond_id))
}

/// Orders a query by (time, id) in `direction`, starts it after `after`,
/// and takes `limit` rows: the shape of every time-ordered list.
pub fn keyset<Q, C>(
    query: Q,
    time: C,
    id: C,
    direction: Direction,
    after: Option<&TimeKey>,
    limit: u64,
) -> Q
where
    Q: QueryFilter + QueryOrder + QuerySelect,
    C: ColumnTrait,
{
    let order = match direction {
        Direction::Ascending => Order::Asc,
        Direction::Descending => Order::Desc,
    };
    let query = match after {
        Some(key) => query.filter(after_time_key(time, id, key, direction)),
        None => query,
    };
    query
        .order_by(time, order.clone())
        .order_by(id, order)
        .limit(limit)
}

/// "(rank, time, id) > key", ascending on all three, where rank is an expression.
pub fn after_ranked_key(
    rank: SimpleExpr,
    time: impl ColumnTrait,
    id: impl ColumnTrait,
    key: &RankedTimeKey,
) -> Condition {
    Condition::any()
        .add(ExprTrait::gt(rank.clone(), key.rank))
        .add(
            Condition::all()
                .add(ExprTrait::eq(rank, key.rank))
                .add(after_time_key(time, id, &key.key, Direction::Ascending)),
        )
}

/// Builds a connection from up to `page.limit()` rows.
pub fn connection<R, K: CursorKey, N: OutputType>(
    mut rows: Vec<R>,
    page_first: u64,
    key: impl Fn(&R) -> K,
    mut node: impl FnMut(R) -> N,
) -> Connection<String, N> {
    let has_next = rows.len() as u64 > page_first;
    rows.truncate(page_first as usize);
    let mut connection = Connection::new(false, has_next);
    connection.edges = rows
        .into_iter()
        .map(|row| {
            let cursor = key(&row).encode();
            Edge::new(cursor, node(row))
        })
        .collect();
    connection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = TimeKey {
            at: DateTime::from_timestamp(1_764_000_000, 123_456_789).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(TimeKey::decode(&key.encode()), Some(key));
        let ranked = RankedTimeKey { rank: 1, key };
        assert_eq!(RankedTimeKey::decode(&ranked.encode()), Some(ranked));
        assert_eq!(TimeKey::decode("garbage"), None);
        assert_eq!(
            TimeKey::decode(&URL_SAFE_NO_PAD.encode("1|not-a-uuid")),
            None
        );
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page::<TimeKey>(None, None).unwrap().first, 20);
        assert!(page::<TimeKey>(Some(101), None).is_err());
        assert!(page::<TimeKey>(Some(-1), None).is_err());
        assert!(page::<TimeKey>(Some(100), None).is_ok());
        assert!(page::<TimeKey>(Some(10), Some("nope".into())).is_err());
    }
}
