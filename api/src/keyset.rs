//! Keyset paging, the one home of every list's order. A list declares its
//! order once, beside its query, as a [`TimeOrder`]: the columns the SQL sorts
//! and seeks by, and how a row yields its cursor key, together. A cursor
//! encodes the sort key of the last row (e.g. startsAt and id), never an
//! offset, so a page never repeats or skips a row while others are inserted
//! or removed, and a deep page costs what the first does.
//!
//! Services take a [`Page`] and return [`Paged`] rows, each with its key;
//! `graphql::pagination` checks the client's `first`/`after` and turns a
//! `Paged` into a Relay connection.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, Order, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, IntoCondition},
};
use uuid::Uuid;

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

/// A page of rows, each with its cursor key, and whether more follow.
pub struct Paged<T, K = TimeKey> {
    pub rows: Vec<(K, T)>,
    pub has_next: bool,
}

impl<T, K> Paged<T, K> {
    /// The empty page: a filter that can match nothing.
    pub fn none() -> Self {
        Self {
            rows: Vec::new(),
            has_next: false,
        }
    }

    /// The page from up to `page.limit()` rows fetched in the list's order.
    pub fn new(mut rows: Vec<T>, page: &Page<K>, key: impl Fn(&T) -> K) -> Self {
        let has_next = rows.len() as u64 > page.first;
        rows.truncate(page.first as usize);
        Self {
            rows: rows.into_iter().map(|row| (key(&row), row)).collect(),
            has_next,
        }
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

/// Only times the API could have issued: a forged cursor with a far-out
/// time would otherwise reach the database as it is.
fn decode_time(raw: &str) -> Option<DateTime<Utc>> {
    let (secs, nanos) = raw.split_once('.')?;
    DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)
        .filter(|at| crate::validate::in_range(*at))
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

/// Which way a list runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Ascending,
    Descending,
}

/// A list ordered by (time, id) over rows of model `M`: the columns of the
/// order and the key each row yields, declared together so they cannot drift.
pub struct TimeOrder<C, M> {
    pub time: C,
    pub id: C,
    pub direction: Direction,
    pub key: fn(&M) -> TimeKey,
}

impl<C: ColumnTrait, M> TimeOrder<C, M> {
    /// Starts `query` after the page's cursor, orders it, and takes one row
    /// more than the page.
    pub fn select<Q>(&self, query: Q, page: &Page<TimeKey>) -> Q
    where
        Q: QueryFilter + QueryOrder + QuerySelect,
    {
        let order = match self.direction {
            Direction::Ascending => Order::Asc,
            Direction::Descending => Order::Desc,
        };
        let query = match &page.after {
            Some(key) => query.filter(after_time_key(self.time, self.id, key, self.direction)),
            None => query,
        };
        query
            .order_by(self.time, order.clone())
            .order_by(self.id, order)
            .limit(page.limit())
    }

    /// The page from the rows `select` fetched; `model` finds the ordered
    /// model in a row (rows may carry related models beside it).
    pub fn paged<T>(
        &self,
        rows: Vec<T>,
        page: &Page<TimeKey>,
        model: impl Fn(&T) -> &M,
    ) -> Paged<T> {
        Paged::new(rows, page, |row| (self.key)(model(row)))
    }
}

/// The keyset condition "(time, id) comes after `key`" in `direction`, as a
/// row comparison: both databases seek an index on (…, time, id) straight to
/// the key with it, so a deep page reads what the first does (an OR of
/// "later, or as late with a greater id" is only a filter to them).
fn after_time_key(
    time: impl ColumnTrait,
    id: impl ColumnTrait,
    key: &TimeKey,
    direction: Direction,
) -> Condition {
    let row = Expr::tuple([time.into_expr(), id.into_expr()]);
    let at = Expr::tuple([Expr::val(key.at), Expr::val(key.id)]);
    match direction {
        Direction::Ascending => row.gt(at),
        Direction::Descending => row.lt(at),
    }
    .into_condition()
}

/// "(rank, time, id) > key", ascending on all three, as a row comparison
/// (rank a column, so that an index on the three seeks to the key).
pub fn after_ranked_key(
    rank: Expr,
    time: impl ColumnTrait,
    id: impl ColumnTrait,
    key: &RankedTimeKey,
) -> Condition {
    Expr::tuple([rank, time.into_expr(), id.into_expr()])
        .gt(Expr::tuple([
            Expr::val(key.rank),
            Expr::val(key.key.at),
            Expr::val(key.key.id),
        ]))
        .into_condition()
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
        let far_out = format!("{}.0|{}", 3_000_000_000_000_i64, key.id);
        assert_eq!(TimeKey::decode(&URL_SAFE_NO_PAD.encode(far_out)), None);
    }

    #[test]
    fn a_page_keeps_its_size_and_says_whether_more_follow() {
        let page = Page::<TimeKey> {
            first: 2,
            after: None,
        };
        let at = Utc::now();
        let key = |n: &u32| TimeKey {
            at,
            id: Uuid::from_u128(u128::from(*n)),
        };
        let full = Paged::new(vec![1, 2, 3], &page, key);
        assert_eq!(
            full.rows.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(full.has_next);
        assert_eq!(full.rows[1].0, key(&2));
        let last = Paged::new(vec![1], &page, key);
        assert!(!last.has_next);
    }
}
