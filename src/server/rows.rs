//! Multi-row statements: `INSERT … VALUES (…), (…), …` with every row's values bound, on either
//! engine.
//!
//! A group commit writes a dozen submissions at a time (see `api::group_commit`). On SQLite
//! every statement is a round trip to the connection's worker thread and a fresh run of the
//! prepared statement; one statement per table for the whole group instead of one per row is
//! what lets the single writer keep up.
//!
//! SQLite gets anonymous `?` placeholders, PostgreSQL numbered ones (`$1`). SQLite resolves a
//! numbered placeholder's index by searching a list of every name in the statement, and sqlx
//! asks for each bound value's name: quadratic in the values of a multi-row statement (12% of
//! the writer's SQLite thread for groups of 13; BENCHMARKS.md).

use super::db::Tx;
use crate::on_tx;

/// One value bound into a multi-row statement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Real(Option<f64>),
}

impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Val<'a> {
    fn from(v: &'a String) -> Self {
        Val::Text(Some(v))
    }
}

impl<'a> From<&'a Option<String>> for Val<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Val::Text(v.as_deref())
    }
}

impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Val::Text(v)
    }
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}

impl From<Option<i64>> for Val<'_> {
    fn from(v: Option<i64>) -> Self {
        Val::Int(v)
    }
}

impl From<Option<f64>> for Val<'_> {
    fn from(v: Option<f64>) -> Self {
        Val::Real(v)
    }
}

/// How a statement marks where its bound values go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `$1`, `$2`, …: PostgreSQL.
    Numbered,
    /// `?` each, bound in order: SQLite.
    Anonymous,
}

/// `head VALUES ($1, …, $width), ($width+1, …), … tail` for `rows` rows (`?` each with
/// [`Placeholders::Anonymous`]). A placeholder may be a constant instead (`Some("1")` in
/// `columns`): it binds nothing.
pub fn values_sql(
    head: &str,
    columns: &[Option<&str>],
    rows: usize,
    tail: &str,
    placeholders: Placeholders,
) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * columns.len() * 5);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (i, constant) in columns.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            match constant {
                Some(c) => sql.push_str(c),
                None => match placeholders {
                    Placeholders::Anonymous => sql.push('?'),
                    Placeholders::Numbered => {
                        n += 1;
                        sql.push('$');
                        sql.push_str(itoa::Buffer::new().format(n));
                    }
                },
            }
        }
        sql.push(')');
    }
    if !tail.is_empty() {
        sql.push(' ');
        sql.push_str(tail);
    }
    sql
}

/// `count` bound columns: the common case of [`values_sql`].
pub fn bound(count: usize) -> Vec<Option<&'static str>> {
    vec![None; count]
}

macro_rules! bind_all {
    ($query:expr, $vals:expr) => {{
        let mut query = $query;
        for v in $vals {
            query = match *v {
                Val::Text(t) => query.bind(t),
                Val::Int(i) => query.bind(i),
                Val::Real(r) => query.bind(r),
            };
        }
        query
    }};
}

/// Inserts the rows in `vals` (row after row, one value per bound column) with one statement
/// `head VALUES (…), …`; nothing when there are none. The rows it inserted.
pub async fn insert(
    tx: &mut Tx,
    head: &str,
    columns: &[Option<&str>],
    vals: &[Val<'_>],
) -> Result<u64, sqlx::Error> {
    let width = columns.iter().filter(|c| c.is_none()).count();
    if vals.is_empty() || width == 0 {
        return Ok(0);
    }
    debug_assert_eq!(vals.len() % width, 0, "whole rows of values");
    let sql = values_sql(head, columns, vals.len() / width, "", tx.placeholders());
    execute(tx, &sql, vals).await
}

/// Runs a statement from [`values_sql`] with `vals` (row after row); the rows it changed.
pub async fn execute(tx: &mut Tx, sql: &str, vals: &[Val<'_>]) -> Result<u64, sqlx::Error> {
    on_tx!(tx, |c| bind_all!(sqlx::query(sql), vals)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
}

/// Runs a statement from [`values_sql`] ending in `RETURNING` one text column; the values it
/// returned.
pub async fn returning(
    tx: &mut Tx,
    sql: &str,
    vals: &[Val<'_>],
) -> Result<Vec<String>, sqlx::Error> {
    on_tx!(tx, |c| bind_all!(sqlx::query_scalar(sql), vals)
        .fetch_all(&mut *c)
        .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_across_rows_and_skips_constants() {
        assert_eq!(
            values_sql(
                "INSERT INTO t (a, b, c)",
                &[None, Some("1"), None],
                2,
                "",
                Placeholders::Numbered
            ),
            "INSERT INTO t (a, b, c) VALUES ($1, 1, $2), ($3, 1, $4)"
        );
        assert_eq!(
            values_sql(
                "INSERT INTO t (a)",
                &bound(1),
                1,
                "ON CONFLICT DO NOTHING",
                Placeholders::Numbered
            ),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING"
        );
    }

    #[test]
    fn anonymous_placeholders_bind_in_order() {
        assert_eq!(
            values_sql(
                "INSERT INTO t (a, b, c)",
                &[None, Some("1"), None],
                2,
                "RETURNING a",
                Placeholders::Anonymous
            ),
            "INSERT INTO t (a, b, c) VALUES (?, 1, ?), (?, 1, ?) RETURNING a"
        );
    }
}
