//! Full-text search of meets: the words of a search (`validate::search_words`)
//! as a condition each database's full-text index serves (migration
//! m20261126_000005). Every word must begin a word of the title, the
//! description or the venue: "brew" finds "Brewing". The words are runs of
//! letters and digits, so no character a client sends is ever read as query
//! syntax by either database.

use chrono::{DateTime, Utc};
use sea_orm::{Condition, DbBackend, Value, sea_query::Expr};

/// Meets holding every one of `words` (not empty) as a word's beginning,
/// among those starting from `from` and before `before`, as far as the list's
/// other conditions bound the start (they still hold it exactly).
pub fn matching(
    backend: DbBackend,
    words: &[String],
    from: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
) -> Condition {
    match backend {
        DbBackend::Postgres => {
            let query = words
                .iter()
                .map(|word| format!("{word}:*"))
                .collect::<Vec<_>>()
                .join(" & ");
            // Quotes doubled, though a word holds none.
            let query = format!("to_tsquery('simple', '{}')", query.replace('\'', "''"));
            // With a lower bound the list walks the start-time index from it
            // and tests each meet's words: the GIN index would list every
            // match in history first, and the planner takes it for common
            // words too, misjudging how few meets of the range have not
            // ended. ts_match_vq is `@@` in a form no index serves. Without
            // a bound, the GIN index is the way in.
            Condition::all().add(Expr::cust(match from {
                Some(_) => format!("ts_match_vq(\"meets\".\"search_vector\", {query})"),
                None => format!("\"meets\".\"search_vector\" @@ {query}"),
            }))
        }
        _ => {
            let query = words
                .iter()
                .map(|word| format!("\"{word}\"*"))
                .collect::<Vec<_>>()
                .join(" AND ");
            // meets_fts is keyed by start day above the meet's rowid, so the
            // start range is a key range: only matches within it are read.
            let mut sql =
                String::from("SELECT rowid % 1099511627776 FROM meets_fts WHERE meets_fts MATCH ?");
            let mut values = vec![Value::from(query)];
            if let Some(from) = from {
                sql.push_str(" AND rowid >= ?");
                values.push(day_key(from).into());
            }
            if let Some(before) = before {
                sql.push_str(" AND rowid < ?");
                values.push((day_key(before) + DAY_KEYS).into());
            }
            // With a lower bound the list walks the start-time index from it
            // and checks each meet against the matches ("+" keeps SQLite from
            // fetching every match by rowid and sorting them instead): a
            // common word fills the page within a few steps, a rare one
            // costs the range's index entries. Without one, the matches are
            // all there is to go by.
            let probe = if from.is_some() { "+" } else { "" };
            Condition::all().add(Expr::cust_with_values(
                format!("{probe}\"meets\".\"rowid\" IN ({sql})"),
                values,
            ))
        }
    }
}

/// Keys of one day in meets_fts: the rowids below the day.
const DAY_KEYS: i64 = 1 << 40;

/// The first key of the day of `at` in meets_fts (`at` in 1970 or later, as
/// every instant the API takes).
fn day_key(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(86_400) * DAY_KEYS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same key as the migration's trigger: unixepoch(starts_at) / 86400
    /// * 2^40 (+ rowid).
    #[test]
    fn a_day_key_is_the_start_day_above_forty_bits() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(day_key(at("1970-01-01T23:59:59Z")), 0);
        assert_eq!(day_key(at("1970-01-02T00:00:00Z")), 1 << 40);
        assert_eq!(day_key(at("2026-11-26T12:00:00Z")), 20_783 * (1_i64 << 40));
        assert!(day_key(at("9999-12-31T23:59:59Z")) < i64::MAX - DAY_KEYS);
    }
}
