//! The statistics page's tables as CSV, with the same numbers as the page: one row per group,
//! or one row per trend bucket. Rates are fractions (0.952), times milliseconds, so a
//! spreadsheet can compute with them; empty where there is nothing to divide.

use super::GroupRow;
use crate::domain::stats::TrendPoint;
use crate::domain::tier::Tier;
use crate::domain::time::iso_utc;

fn rate(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.4}")).unwrap_or_default()
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

pub const GROUP_COLUMNS: [&str; 24] = [
    "group",
    "label",
    "requests",
    "tier_auto",
    "tier_log",
    "tier_review",
    "tier_dual",
    "tier_block",
    "executed_without_review",
    "blocked",
    "approved_unchanged",
    "approved_with_edit",
    "rejected",
    "expired",
    "withdrawn",
    "pending",
    "approval_rate",
    "median_decision_ms",
    "p90_decision_ms",
    "log_reviewed_after",
    "log_should_not_have_happened",
    "auto_reviewed_after",
    "auto_should_not_have_happened",
    "reviewer_load",
];

pub fn groups_csv(rows: &[GroupRow]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(256 + rows.len() * 200));
    let _ = w.write_record(GROUP_COLUMNS);
    for g in rows {
        let s = &g.stats;
        let o = s.outcomes;
        let h = s.hindsight;
        let load = s
            .reviewers
            .iter()
            .map(|r| format!("{}={}", r.reviewer, r.decisions))
            .collect::<Vec<_>>()
            .join("; ");
        let mut record: Vec<String> = vec![s.key.clone(), g.label.clone(), s.total().to_string()];
        record.extend(Tier::ALL.iter().map(|t| s.tier(*t).to_string()));
        record.extend(
            [
                o.auto_approved,
                o.blocked,
                o.approved_unchanged,
                o.approved_with_edit,
                o.rejected,
                o.expired,
                o.withdrawn,
                o.pending,
            ]
            .map(|n| n.to_string()),
        );
        record.push(rate(o.approval_rate()));
        record.push(opt(s.median_decision_ms));
        record.push(opt(s.p90_decision_ms));
        record.extend(
            [
                h.log_reviewed,
                h.log_flagged,
                h.auto_reviewed,
                h.auto_flagged,
            ]
            .map(|n| n.to_string()),
        );
        record.push(load);
        let _ = w.write_record(&record);
    }
    w.into_inner().unwrap_or_default()
}

pub const TREND_COLUMNS: [&str; 16] = [
    "bucket_start",
    "bucket_start_ms",
    "tier_auto",
    "tier_log",
    "tier_review",
    "tier_dual",
    "tier_block",
    "executed_without_review",
    "blocked",
    "approved_unchanged",
    "approved_with_edit",
    "rejected",
    "expired",
    "withdrawn",
    "pending",
    "approval_rate",
];

pub fn trend_csv(points: &[TrendPoint]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(256 + points.len() * 100));
    let _ = w.write_record(TREND_COLUMNS);
    for p in points {
        let o = p.outcomes;
        let mut record = vec![iso_utc(p.start_ms), p.start_ms.to_string()];
        record.extend(p.by_tier.iter().map(u64::to_string));
        record.extend(
            [
                o.auto_approved,
                o.blocked,
                o.approved_unchanged,
                o.approved_with_edit,
                o.rejected,
                o.expired,
                o.withdrawn,
                o.pending,
            ]
            .map(|n| n.to_string()),
        );
        record.push(rate(o.approval_rate()));
        let _ = w.write_record(&record);
    }
    w.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::stats::{
        req, summarise, GroupBy, Outcome, OutcomeCounts, ReviewerLoad, Window,
    };

    #[test]
    fn group_rows_carry_every_number_of_the_page() {
        let mut h = Vec::new();
        for (i, o) in [
            Outcome::ApprovedUnchanged,
            Outcome::ApprovedUnchanged,
            Outcome::ApprovedUnchanged,
            Outcome::Rejected,
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = req("r", "refunds", Tier::Review, o);
            r.decided_at_ms = Some(60_000 * (i as i64 + 1));
            r.reviewer_id = Some("ann".into());
            h.push(r);
        }
        h.push(req("a", "refunds", Tier::Auto, Outcome::AutoApproved));
        let all = Window {
            from_ms: 0,
            to_ms: 1,
        };
        let mut stats = summarise(&h, GroupBy::Gate, all);
        stats[0].reviewers = vec![ReviewerLoad {
            reviewer: "Ann, \"the\" reviewer".into(),
            decisions: 4,
        }];
        let rows: Vec<GroupRow> = stats
            .into_iter()
            .map(|s| GroupRow {
                label: "Refunds".into(),
                gate: Some("refunds".into()),
                stats: s,
            })
            .collect();
        let text = String::from_utf8(groups_csv(&rows)).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), GROUP_COLUMNS.join(","));
        assert_eq!(
            lines.next().unwrap(),
            "refunds,Refunds,5,1,0,4,0,0,1,0,3,0,1,0,0,0,0.7500,120000,240000,0,0,0,0,\"Ann, \"\"the\"\" reviewer=4\""
        );
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn trend_rows_are_one_per_bucket_with_empty_rates_when_undecided() {
        let mut busy = TrendPoint {
            start_ms: 0,
            ..TrendPoint::default()
        };
        busy.by_tier = [1, 2, 3, 0, 1];
        busy.outcomes = OutcomeCounts {
            approved_unchanged: 1,
            rejected: 1,
            ..OutcomeCounts::default()
        };
        let quiet = TrendPoint {
            start_ms: 86_400_000,
            ..TrendPoint::default()
        };
        let text = String::from_utf8(trend_csv(&[busy, quiet])).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            "1970-01-01T00:00:00Z,0,1,2,3,0,1,0,0,1,0,1,0,0,0,0.5000"
        );
        assert_eq!(
            lines[2],
            "1970-01-02T00:00:00Z,86400000,0,0,0,0,0,0,0,0,0,0,0,0,0,"
        );
    }
}
