//! What an inbox URL asks for, checked: filters, grouping, sort order and page position.
//!
//! Pure (no I/O), so every rule about the URL is unit-tested here and the query layer only
//! turns a valid [`ListQuery`] into SQL. The order of the list is always
//! `(group, urgency, sort key, id)`: groups stay contiguous across pages, overdue and escalated
//! requests float to the top of their group, and the id breaks ties so keyset paging is exact.

use crate::domain::status::Status;
use crate::domain::tier::Tier;
use crate::error::AppError;
use serde::{Deserialize, Serialize};

/// The raw URL parameters of `/inbox`, exactly as typed; [`ListQuery::parse`] checks them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InboxFilter {
    pub tier: Option<String>,
    pub status: Option<String>,
    pub gate: Option<String>,
    pub agent: Option<String>,
    pub action_type: Option<String>,
    /// Free text, searched in the title, counterparty, reasoning and payload.
    pub q: Option<String>,
    /// `overdue`, `1h`, `4h` or `24h`: the deadline is within that.
    pub due: Option<String>,
    /// Amount range in major units of the request's own currency ("1000", "99.50").
    pub min_amount: Option<String>,
    pub max_amount: Option<String>,
    /// Waiting at least this long: `1h`, `4h`, `24h` or `7d`.
    pub age: Option<String>,
    /// `me` (claimed by me, or a dual half I hold) or `unassigned` (nobody is on it).
    pub assigned: Option<String>,
    pub group: Option<String>,
    pub sort: Option<String>,
    /// Keyset position of the page (see [`Cursor`]).
    pub after: Option<String>,
}

/// The parameters that make up a view, in URL order (everything but the page position).
const VIEW_KEYS: [&str; 13] = [
    "tier",
    "status",
    "gate",
    "agent",
    "action_type",
    "q",
    "due",
    "min_amount",
    "max_amount",
    "age",
    "assigned",
    "group",
    "sort",
];

impl InboxFilter {
    fn get(&self, key: &str) -> &Option<String> {
        match key {
            "tier" => &self.tier,
            "status" => &self.status,
            "gate" => &self.gate,
            "agent" => &self.agent,
            "action_type" => &self.action_type,
            "q" => &self.q,
            "due" => &self.due,
            "min_amount" => &self.min_amount,
            "max_amount" => &self.max_amount,
            "age" => &self.age,
            "assigned" => &self.assigned,
            "group" => &self.group,
            "sort" => &self.sort,
            _ => &self.after,
        }
    }

    fn set(&mut self, key: &str, value: String) {
        let slot = match key {
            "tier" => &mut self.tier,
            "status" => &mut self.status,
            "gate" => &mut self.gate,
            "agent" => &mut self.agent,
            "action_type" => &mut self.action_type,
            "q" => &mut self.q,
            "due" => &mut self.due,
            "min_amount" => &mut self.min_amount,
            "max_amount" => &mut self.max_amount,
            "age" => &mut self.age,
            "assigned" => &mut self.assigned,
            "group" => &mut self.group,
            "sort" => &mut self.sort,
            "after" => &mut self.after,
            _ => return,
        };
        *slot = Some(value);
    }

    /// Reads a filter from `(key, value)` pairs, such as a URL's query map.
    pub fn from_pairs<K: AsRef<str>>(pairs: impl IntoIterator<Item = (K, String)>) -> InboxFilter {
        let mut f = InboxFilter::default();
        for (k, v) in pairs {
            f.set(k.as_ref(), v);
        }
        f
    }

    /// The view as a query string (without `?` or the page position), for links that keep it
    /// and for saved views. Empty values are left out, so equal views have equal strings.
    pub fn query(&self) -> String {
        VIEW_KEYS
            .iter()
            .filter_map(|k| {
                self.get(k)
                    .as_ref()
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{k}={}", crate::shell::query_escape(v)))
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// `/inbox?…` for this view with one parameter replaced (or removed when `value` is empty),
    /// starting again from the first page.
    pub fn with(&self, key: &str, value: &str) -> String {
        let mut f = self.clone();
        f.after = None;
        match key {
            "after" => f.after = Some(value.to_owned()),
            _ if value.is_empty() => {
                if let Some(slot) = VIEW_KEYS.iter().position(|k| *k == key) {
                    f.clear(VIEW_KEYS[slot]);
                }
            }
            _ => f.set(key, value.to_owned()),
        }
        f.href()
    }

    fn clear(&mut self, key: &str) {
        let mut f = InboxFilter::default();
        for k in VIEW_KEYS.iter().filter(|k| **k != key) {
            if let Some(v) = self.get(k).clone() {
                f.set(k, v);
            }
        }
        f.after = self.after.take();
        *self = f;
    }

    /// The link to this view and page.
    pub fn href(&self) -> String {
        let mut q = self.query();
        if let Some(after) = self.after.as_deref().filter(|a| !a.is_empty()) {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str("after=");
            q.push_str(&crate::shell::query_escape(after));
        }
        if q.is_empty() {
            "/inbox".to_owned()
        } else {
            format!("/inbox?{q}")
        }
    }
}

/// What rows are gathered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GroupBy {
    #[default]
    None,
    Gate,
    Agent,
    ActionType,
    Customer,
    Tier,
}

impl GroupBy {
    pub const ALL: [GroupBy; 6] = [
        GroupBy::None,
        GroupBy::Gate,
        GroupBy::Agent,
        GroupBy::ActionType,
        GroupBy::Customer,
        GroupBy::Tier,
    ];

    pub fn param(self) -> &'static str {
        match self {
            GroupBy::None => "",
            GroupBy::Gate => "gate",
            GroupBy::Agent => "agent",
            GroupBy::ActionType => "action_type",
            GroupBy::Customer => "customer",
            GroupBy::Tier => "tier",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            GroupBy::None => "No grouping",
            GroupBy::Gate => "Gate",
            GroupBy::Agent => "Agent",
            GroupBy::ActionType => "Action type",
            GroupBy::Customer => "Customer",
            GroupBy::Tier => "Tier",
        }
    }

    fn code(self) -> char {
        match self {
            GroupBy::None => 'n',
            GroupBy::Gate => 'g',
            GroupBy::Agent => 'a',
            GroupBy::ActionType => 't',
            GroupBy::Customer => 'c',
            GroupBy::Tier => 'r',
        }
    }

    /// The SQL expression of a row's group (`r` requests, `a` agents, `g` gates).
    pub fn sql(self) -> &'static str {
        match self {
            GroupBy::None => "''",
            GroupBy::Gate => "COALESCE(g.name, '')",
            GroupBy::Agent => "a.name",
            GroupBy::ActionType => "r.action_type",
            GroupBy::Customer => "COALESCE(r.counterparty, '')",
            GroupBy::Tier => "r.tier",
        }
    }

    /// What an empty group value means on screen.
    pub fn empty_label(self) -> &'static str {
        match self {
            GroupBy::Gate => "No gate matched",
            GroupBy::Customer => "No customer named",
            _ => "All open requests",
        }
    }
}

/// The order inside a group, after overdue and escalated requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SortBy {
    /// Oldest first: first come, first served.
    #[default]
    Age,
    /// Nearest deadline first; requests without a deadline last.
    Deadline,
    /// Largest amount first (compared in major units across currencies); no amount last.
    Amount,
    /// Dual before review, then by amount, largest first.
    Risk,
}

impl SortBy {
    pub const ALL: [SortBy; 4] = [SortBy::Age, SortBy::Deadline, SortBy::Amount, SortBy::Risk];

    pub fn param(self) -> &'static str {
        match self {
            SortBy::Age => "age",
            SortBy::Deadline => "deadline",
            SortBy::Amount => "amount",
            SortBy::Risk => "risk",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortBy::Age => "Oldest first",
            SortBy::Deadline => "Deadline",
            SortBy::Amount => "Largest amount",
            SortBy::Risk => "Risk",
        }
    }

    fn code(self) -> char {
        self.param().chars().next().unwrap_or('a')
    }

    /// The SQL expression of the ascending sort key, an integer.
    pub fn sql(self) -> String {
        let milli = format!("r.amount_minor * {}", milli_factor_sql());
        match self {
            SortBy::Age => "r.created_at".to_owned(),
            SortBy::Deadline => format!("COALESCE(r.deadline_at, {})", i64::MAX),
            SortBy::Amount => format!("-COALESCE({milli}, -1)"),
            // Dual first, then the amount; amounts are at most 10^18 milli-units.
            SortBy::Risk => format!(
                "(CASE WHEN r.tier = 'dual' THEN 0 ELSE 2000000000000000000 END) - COALESCE({milli}, 0)"
            ),
        }
    }
}

/// `CASE` giving, per currency, what turns minor units into thousandths of a major unit, so
/// amounts in different currencies compare in major units.
pub fn milli_factor_sql() -> String {
    let mut s = String::from("(CASE r.currency");
    for (code, exponent) in crate::domain::money::currencies() {
        if *exponent != 2 {
            s.push_str(&format!(
                " WHEN '{code}' THEN {}",
                10i64.pow(3 - *exponent as u32)
            ));
        }
    }
    s.push_str(" ELSE 10 END)");
    s
}

/// Whose work a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assigned {
    /// Claimed by me, or a dual half I hold and have not submitted.
    Me,
    /// Nobody has claimed it and no half of it is held.
    Unassigned,
}

/// A keyset position: the last row's place in the order, and the instant the first page was
/// read, so "overdue" means the same on every page of one walk through the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub group: GroupBy,
    pub sort: SortBy,
    pub at: i64,
    pub group_value: String,
    pub urgency: i64,
    pub key: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let hex: String = self
            .group_value
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            "{}{}.{}.{}.{}.{}.{hex}",
            self.sort.code(),
            self.group.code(),
            self.at,
            self.urgency,
            self.key,
            self.id
        )
    }

    /// Parses a position made for this `group` and `sort`; any other is refused, since it would
    /// silently skip or repeat rows.
    pub fn parse(s: &str, group: GroupBy, sort: SortBy) -> Result<Cursor, AppError> {
        let bad = || {
            AppError::invalid(
                "after",
                "not a page position from this inbox view; start again from the first page",
            )
        };
        let parts: Vec<&str> = s.split('.').collect();
        let [mode, at, urgency, key, id, hex] = parts[..] else {
            return Err(bad());
        };
        if mode != format!("{}{}", sort.code(), group.code()) {
            return Err(bad());
        }
        let at = at.parse::<i64>().map_err(|_| bad())?;
        let urgency = urgency.parse::<i64>().map_err(|_| bad())?;
        let key = key.parse::<i64>().map_err(|_| bad())?;
        if !matches!(urgency, 0 | 1)
            || id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || hex.len() % 2 != 0
            || hex.len() > 1024
        {
            return Err(bad());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| bad())?;
        let group_value = String::from_utf8(bytes).map_err(|_| bad())?;
        Ok(Cursor {
            group,
            sort,
            at,
            group_value,
            urgency,
            key,
            id: id.to_owned(),
        })
    }
}

/// A keyset position in a list ordered by time then id (the after-the-fact queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeCursor {
    pub created_at: i64,
    pub id: String,
}

impl TimeCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    pub fn parse(s: &str) -> Result<TimeCursor, AppError> {
        let bad = || {
            AppError::invalid(
                "after",
                "not a page position from this list; start again from the first page",
            )
        };
        let (at, id) = s.split_once('.').ok_or_else(bad)?;
        let created_at = at.parse::<i64>().map_err(|_| bad())?;
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(bad());
        }
        Ok(TimeCursor {
            created_at,
            id: id.to_owned(),
        })
    }
}

/// A checked inbox view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    pub tier: Option<Tier>,
    pub status: Option<Status>,
    pub gate: Option<String>,
    pub agent: Option<String>,
    pub action_type: Option<String>,
    /// Free text (case-insensitive, matched literally).
    pub text: Option<String>,
    /// Only requests whose deadline is at most this many milliseconds away (0: overdue).
    pub due_within: Option<i64>,
    /// Amount bounds in thousandths of a major unit.
    pub min_milli: Option<i64>,
    pub max_milli: Option<i64>,
    /// Only requests waiting at least this many milliseconds.
    pub older_than: Option<i64>,
    pub assigned: Option<Assigned>,
    pub group: GroupBy,
    pub sort: SortBy,
    pub after: Option<Cursor>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A gate key, agent name or action type: what those names are made of, nothing else.
fn name(field: &str, value: &Option<String>) -> Result<Option<String>, AppError> {
    match present(value) {
        None => Ok(None),
        Some(v)
            if v.len() <= 128
                && v.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                }) =>
        {
            Ok(Some(v.to_owned()))
        }
        Some(_) => Err(AppError::invalid(
            field,
            "is not a name this inbox uses; choose one from the list",
        )),
    }
}

/// "1,000.50" -> 1_000_500 thousandths.
fn amount(field: &str, value: &Option<String>) -> Result<Option<i64>, AppError> {
    let Some(v) = present(value) else {
        return Ok(None);
    };
    let bad = || {
        AppError::invalid(
            field,
            "write an amount in major units, like 1000 or 99.50 (at most 3 decimals)",
        )
    };
    let cleaned: String = v.chars().filter(|c| *c != ',' && *c != '_').collect();
    let (whole, frac) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if whole.is_empty()
        || whole.len() > 15
        || frac.len() > 3
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<3}").parse().map_err(|_| bad())?;
    Ok(Some(whole * 1000 + frac))
}

const HOUR: i64 = 3_600_000;

impl ListQuery {
    pub fn parse(f: &InboxFilter) -> Result<ListQuery, AppError> {
        let tier = present(&f.tier)
            .map(|s| {
                s.parse::<Tier>()
                    .map_err(|e| AppError::invalid("tier", e.to_string()))
            })
            .transpose()?;
        let status = match present(&f.status) {
            None => None,
            Some(s) => match s.parse::<Status>() {
                Ok(st @ (Status::Pending | Status::InReview | Status::Escalated)) => Some(st),
                _ => {
                    return Err(AppError::invalid(
                        "status",
                        "the inbox holds open requests: choose pending, in_review or escalated",
                    ))
                }
            },
        };
        let text = match present(&f.q) {
            None => None,
            Some(t) if t.chars().count() > 200 => {
                return Err(AppError::invalid("q", "search for at most 200 characters"))
            }
            Some(t) => Some(t.to_owned()),
        };
        let due_within = match present(&f.due) {
            None => None,
            Some("overdue") => Some(0),
            Some("1h") => Some(HOUR),
            Some("4h") => Some(4 * HOUR),
            Some("24h") => Some(24 * HOUR),
            Some(_) => return Err(AppError::invalid("due", "choose overdue, 1h, 4h or 24h")),
        };
        let older_than = match present(&f.age) {
            None => None,
            Some("1h") => Some(HOUR),
            Some("4h") => Some(4 * HOUR),
            Some("24h") => Some(24 * HOUR),
            Some("7d") => Some(7 * 24 * HOUR),
            Some(_) => return Err(AppError::invalid("age", "choose 1h, 4h, 24h or 7d")),
        };
        let (min_milli, max_milli) = (
            amount("min_amount", &f.min_amount)?,
            amount("max_amount", &f.max_amount)?,
        );
        if let (Some(lo), Some(hi)) = (min_milli, max_milli) {
            if lo > hi {
                return Err(AppError::invalid(
                    "max_amount",
                    "must be at least the minimum amount",
                ));
            }
        }
        let assigned = match present(&f.assigned) {
            None => None,
            Some("me") => Some(Assigned::Me),
            Some("unassigned") => Some(Assigned::Unassigned),
            Some(_) => return Err(AppError::invalid("assigned", "choose me or unassigned")),
        };
        let group = match present(&f.group) {
            None => GroupBy::None,
            Some(g) => GroupBy::ALL
                .into_iter()
                .find(|x| x.param() == g && !g.is_empty())
                .ok_or_else(|| {
                    AppError::invalid("group", "choose gate, agent, action_type, customer or tier")
                })?,
        };
        let sort = match present(&f.sort) {
            None => SortBy::Age,
            Some(s) => SortBy::ALL
                .into_iter()
                .find(|x| x.param() == s)
                .ok_or_else(|| AppError::invalid("sort", "choose age, deadline, amount or risk"))?,
        };
        let after = present(&f.after)
            .map(|a| Cursor::parse(a, group, sort))
            .transpose()?;
        Ok(ListQuery {
            tier,
            status,
            gate: name("gate", &f.gate)?,
            agent: name("agent", &f.agent)?,
            action_type: name("action_type", &f.action_type)?,
            text,
            due_within,
            min_milli,
            max_milli,
            older_than,
            assigned,
            group,
            sort,
            after,
        })
    }
}

/// A `LIKE` pattern matching `text` anywhere, literally (`%`, `_` and `\` escaped), lower case.
pub fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &[(&str, &str)]) -> InboxFilter {
        InboxFilter::from_pairs(pairs.iter().map(|(k, v)| (*k, v.to_string())))
    }

    #[test]
    fn an_empty_url_is_every_open_request_oldest_first() {
        let q = ListQuery::parse(&InboxFilter::default()).unwrap();
        assert_eq!(q, ListQuery::default());
        assert_eq!(q.sort, SortBy::Age);
        assert_eq!(q.group, GroupBy::None);
    }

    #[test]
    fn every_filter_is_read_and_checked() {
        let q = ListQuery::parse(&filter(&[
            ("tier", "dual"),
            ("status", "escalated"),
            ("gate", "refunds"),
            ("min_amount", "1,000"),
            ("max_amount", "2500.5"),
            ("age", "24h"),
            ("assigned", "me"),
            ("group", "customer"),
            ("sort", "amount"),
            ("due", "overdue"),
            ("q", "  Contoso "),
        ]))
        .unwrap();
        assert_eq!(q.tier, Some(Tier::Dual));
        assert_eq!(q.status, Some(Status::Escalated));
        assert_eq!(q.min_milli, Some(1_000_000));
        assert_eq!(q.max_milli, Some(2_500_500));
        assert_eq!(q.older_than, Some(24 * HOUR));
        assert_eq!(q.assigned, Some(Assigned::Me));
        assert_eq!(q.group, GroupBy::Customer);
        assert_eq!(q.sort, SortBy::Amount);
        assert_eq!(q.due_within, Some(0));
        assert_eq!(q.text.as_deref(), Some("Contoso"));
    }

    #[test]
    fn bad_values_name_their_field() {
        for (key, value) in [
            ("tier", "urgent"),
            ("status", "approved"),
            ("gate", "Refunds; DROP"),
            ("min_amount", "-5"),
            ("min_amount", "1.2345"),
            ("max_amount", "lots"),
            ("age", "3w"),
            ("assigned", "everyone"),
            ("group", "colour"),
            ("sort", "random"),
            ("due", "soon"),
            ("after", "garbage"),
        ] {
            match ListQuery::parse(&filter(&[(key, value)])) {
                Err(AppError::Invalid { field, .. }) => assert_eq!(field, key, "{key}={value}"),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
        let long = "x".repeat(201);
        assert!(ListQuery::parse(&filter(&[("q", &long)])).is_err());
        match ListQuery::parse(&filter(&[("min_amount", "10"), ("max_amount", "5")])) {
            Err(AppError::Invalid { field, .. }) => assert_eq!(field, "max_amount"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cursors_round_trip_and_belong_to_one_order() {
        let c = Cursor {
            group: GroupBy::Customer,
            sort: SortBy::Deadline,
            at: 1_700_000_000_000,
            group_value: "Contoso Ltd. · Zürich".into(),
            urgency: 1,
            key: -42,
            id: "req_0191abc".into(),
        };
        let s = c.encode();
        assert_eq!(
            Cursor::parse(&s, GroupBy::Customer, SortBy::Deadline),
            Ok(c)
        );
        // The same position means nothing in another order.
        assert!(Cursor::parse(&s, GroupBy::Gate, SortBy::Deadline).is_err());
        assert!(Cursor::parse(&s, GroupBy::Customer, SortBy::Age).is_err());
        for bad in [
            "",
            "x",
            "an.1.0.5..",
            "an.1.2.5.req_1.",
            "an.1.0.5.req-1;DROP.",
            "an.1.0.5.req_1.zz",
            "an.1.0.5.req_1.f",
            "an.1.0.five.req_1.",
        ] {
            assert!(
                Cursor::parse(bad, GroupBy::None, SortBy::Age).is_err(),
                "{bad}"
            );
        }
        let plain = Cursor {
            group: GroupBy::None,
            sort: SortBy::Age,
            at: 5,
            group_value: String::new(),
            urgency: 0,
            key: 7,
            id: "req_1".into(),
        };
        assert_eq!(plain.encode(), "an.5.0.7.req_1.");
    }

    #[test]
    fn links_keep_the_view_and_drop_the_page() {
        let f = filter(&[
            ("gate", "refunds"),
            ("group", "agent"),
            ("after", "an.1.0.5.req_1."),
            ("q", "a&b"),
        ]);
        assert_eq!(f.query(), "gate=refunds&q=a%26b&group=agent");
        assert_eq!(
            f.with("sort", "amount"),
            "/inbox?gate=refunds&q=a%26b&group=agent&sort=amount"
        );
        assert_eq!(f.with("group", ""), "/inbox?gate=refunds&q=a%26b");
        assert_eq!(
            f.with("after", "x"),
            "/inbox?gate=refunds&q=a%26b&group=agent&after=x"
        );
        assert_eq!(InboxFilter::default().href(), "/inbox");
    }

    #[test]
    fn amounts_compare_in_major_units_across_currencies() {
        let sql = milli_factor_sql();
        assert!(sql.contains("WHEN 'JPY' THEN 1000"), "{sql}");
        assert!(sql.contains("WHEN 'KWD' THEN 1"), "{sql}");
        assert!(sql.ends_with("ELSE 10 END)"));
        assert!(!sql.contains("'EUR'"));
    }

    #[test]
    fn time_cursors_round_trip_and_refuse_garbage() {
        let c = TimeCursor {
            created_at: 1_700_000_000_000,
            id: "req_0191abc".into(),
        };
        assert_eq!(TimeCursor::parse(&c.encode()), Ok(c));
        for bad in ["", "x", "12", "abc.req_1", "12.", "12.req-1;DROP", "12.a b"] {
            assert!(TimeCursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn like_patterns_match_literally() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(contains_pattern("ABC"), "%abc%");
    }
}
