//! `/stats`: what happened to past requests per gate (or rule, agent, action type, reviewer)
//! over a window chosen in the URL, trend charts with their numbers, alarms with suggestions,
//! and CSV downloads of both tables. Works without JavaScript: a GET form and server HTML.

use super::charts::{self, Line, Series};
use super::params::{StatsQuery, GROUPINGS};
use super::{bucket_label, duration, load_stats, pct, window_text, GroupRow, StatsData};
use crate::domain::stats::{HindsightCounts, Outcome, TrendPoint};
use crate::domain::tier::Tier;
use crate::inbox::group_digits;
use crate::shell::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn StatsPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || StatsQuery::from_query(&query.read());
    let data = Resource::new(q, load_stats);
    view! {
        <Title text="Stats"/>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let current = StatsQuery::from_query(&query.read_untracked());
                match data.await {
                    Err(e) => view! {
                        <div class="page-head"><h1>"Stats"</h1></div>
                        <Filters q=current gates=Vec::new()/>
                        <ErrorNotice error=e/>
                    }.into_any(),
                    Ok(d) => view! { <Stats d/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Filters(q: StatsQuery, gates: Vec<(String, String)>) -> impl IntoView {
    let days = q.window.days.clone().unwrap_or_default();
    let group = q.group.clone().unwrap_or_else(|| "gate".into());
    let gate = q.gate.clone().unwrap_or_default();
    view! {
        <form method="get" action="/stats" class="filters" data-testid="stats-filters">
            <label>"Last "<input type="number" name="days" min="1" max="3650" placeholder="30" value=days class="days"/>" days"</label>
            <label>"or from "<input type="date" name="from" value=q.window.from.clone().unwrap_or_default()/></label>
            <label>"to "<input type="date" name="to" value=q.window.to.clone().unwrap_or_default()/></label>
            <label>"Group by "
                <select name="group">
                    {GROUPINGS.iter().map(|(v, l)| view! { <option value=*v selected=*v == group>{*l}</option> }).collect_view()}
                </select>
            </label>
            <label>"Gate "
                <select name="gate">
                    <option value="" selected=gate.is_empty()>"All gates"</option>
                    {gates.into_iter().map(|(k, n)| {
                        let selected = k == gate;
                        view! { <option value=k.clone() selected=selected>{n}</option> }
                    }).collect_view()}
                </select>
            </label>
            <button type="submit">"Show"</button>
        </form>
    }
}

fn tier_series(trend: &[TrendPoint]) -> Vec<Series> {
    Tier::ALL
        .iter()
        .map(|t| Series {
            name: t.as_str().to_owned(),
            color: charts::tier_color(*t),
            values: trend.iter().map(|p| p.by_tier[*t as usize]).collect(),
        })
        .collect()
}

fn rate_series(trend: &[TrendPoint]) -> Vec<Line> {
    vec![
        Line {
            name: "approved unchanged".into(),
            color: charts::outcome_color(Outcome::ApprovedUnchanged),
            values: trend.iter().map(|p| p.outcomes.approval_rate()).collect(),
        },
        Line {
            name: "edited or rejected".into(),
            color: charts::outcome_color(Outcome::Rejected),
            values: trend.iter().map(|p| p.outcomes.correction_rate()).collect(),
        },
    ]
}

/// "2.5% of 40 reviewed", or "not reviewed".
fn hindsight_text(flagged: u64, reviewed: u64) -> String {
    if reviewed == 0 {
        "not reviewed".into()
    } else {
        format!(
            "{} of {reviewed} reviewed",
            pct(Some(flagged as f64 / reviewed as f64))
        )
    }
}

fn hindsight_cell(h: &HindsightCounts) -> String {
    format!(
        "log: {} · auto: {}",
        hindsight_text(h.log_flagged, h.log_reviewed),
        hindsight_text(h.auto_flagged, h.auto_reviewed)
    )
}

#[component]
fn Stats(d: StatsData) -> impl IntoView {
    let qs = d.query.query_string();
    let sep = if qs.is_empty() { "" } else { "&" };
    let csv_groups = format!("/stats.csv?{qs}{sep}table=groups");
    let csv_trend = format!("/stats.csv?{qs}{sep}table=trend");
    let labels: Vec<String> = d
        .trend
        .iter()
        .map(|p| bucket_label(p.start_ms, d.bucket_ms))
        .collect();
    let bucket_word = match d.bucket_ms / super::params::DAY {
        1 => "day",
        7 => "week",
        _ => "30 days",
    };
    let volume_svg = charts::stacked_bars(
        &format!("Requests per {bucket_word} by tier"),
        &labels,
        &tier_series(&d.trend),
        &[],
    );
    let rates_svg = charts::rate_lines(
        &format!("Approval and correction rate per {bucket_word}"),
        &labels,
        &rate_series(&d.trend),
    );
    let tier_legend: Vec<(&str, &str)> = Tier::ALL
        .iter()
        .map(|t| (t.as_str(), charts::tier_color(*t)))
        .collect();
    let rate_legend = [
        (
            "approved unchanged",
            charts::outcome_color(Outcome::ApprovedUnchanged),
        ),
        (
            "edited or rejected",
            charts::outcome_color(Outcome::Rejected),
        ),
    ];
    let group_title = GROUPINGS
        .iter()
        .find(|(v, _)| *v == d.group_name)
        .map(|(_, l)| *l)
        .unwrap_or("Gate");
    view! {
        <div class="page-head">
            <h1>"Stats"</h1>
            <p class="downloads">
                <a href=csv_groups.clone() download data-testid="csv-groups">"Download table (CSV)"</a>
                " · "
                <a href=csv_trend.clone() download data-testid="csv-trend">"Download trend (CSV)"</a>
            </p>
        </div>
        <Filters q=d.query.clone() gates=d.gates.clone()/>
        <p class="count" data-testid="stats-count">
            {format!("{} requests created {}.", group_digits(d.requests as i64), window_text(&d.window))}
        </p>
        <section class="alarms" data-testid="alarms" aria-labelledby="alarms-h">
            <h2 id="alarms-h">"Alarms"</h2>
            {if d.alarms.is_empty() {
                view! { <p class="muted">"No alarms: no gate or rule is rubber-stamped (more than 95% approved unchanged over at least 50 decisions), and none has a correction rate rising by 10 points or more between the two halves of the window."</p> }.into_any()
            } else {
                view! {
                    <ul class="alarm-list">
                        {d.alarms.iter().map(|a| view! {
                            <li class="alarm card" data-kind=a.kind.clone()>
                                <p><strong>{a.kind.clone()}</strong>" · "<code>{a.key.clone()}</code>" · "{a.detail.clone()}</p>
                                <p class="muted">{a.suggestion.clone()}</p>
                                {a.tune_href.clone().map(|h| view! { <p><a href=h>"Backtest a change on the tuning screen →"</a></p> })}
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
        <h2>"Trends"</h2>
        <div class="chart-grid">
            <figure class="chart card" data-testid="chart-volume">
                <figcaption>{format!("Requests per {bucket_word} by tier")}</figcaption>
                <div class="chart-box" inner_html=volume_svg></div>
                <div inner_html=charts::legend(&tier_legend)></div>
            </figure>
            <figure class="chart card" data-testid="chart-rates">
                <figcaption>{format!("Share of human decisions per {bucket_word}")}</figcaption>
                <div class="chart-box" inner_html=rates_svg></div>
                <div inner_html=charts::legend(&rate_legend)></div>
            </figure>
        </div>
        <details class="numbers" data-testid="trend-table">
            <summary>"The numbers behind the charts"</summary>
            <div class="table-scroll">
                <table class="inbox stats-table">
                    <thead><tr>
                        <th scope="col">"From"</th>
                        {Tier::ALL.iter().map(|t| view! { <th scope="col">{t.as_str()}</th> }).collect_view()}
                        <th scope="col">"Approved unchanged"</th><th scope="col">"With edit"</th><th scope="col">"Rejected"</th>
                        <th scope="col">"Expired"</th><th scope="col">"Withdrawn"</th><th scope="col">"Approval rate"</th><th scope="col">"Correction rate"</th>
                    </tr></thead>
                    <tbody>
                        {d.trend.iter().map(|p| {
                            let o = p.outcomes;
                            view! {
                                <tr>
                                    <td><time datetime=crate::domain::time::iso_utc(p.start_ms)>{crate::domain::time::iso_utc(p.start_ms)[..10].to_owned()}</time></td>
                                    {p.by_tier.iter().map(|n| view! { <td class="num">{group_digits(*n as i64)}</td> }).collect_view()}
                                    <td class="num">{o.approved_unchanged}</td><td class="num">{o.approved_with_edit}</td><td class="num">{o.rejected}</td>
                                    <td class="num">{o.expired}</td><td class="num">{o.withdrawn}</td>
                                    <td class="num">{pct(o.approval_rate())}</td><td class="num">{pct(o.correction_rate())}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </details>
        <h2>{format!("By {}", group_title.to_lowercase())}</h2>
        {if d.groups.is_empty() {
            view! { <p class="empty-state" data-testid="stats-empty">"No requests in this window. Choose a longer window, or load demo data with "<code>"countersign demo"</code>"."</p> }.into_any()
        } else {
            view! { <GroupTable rows=d.groups.clone() title=group_title/> }.into_any()
        }}
        <p class="muted small">"Approval rate: approved unchanged over human decisions (approved, approved with edit, rejected); expiry and withdrawal are not judgements. Decision times are from request to human decision. After-the-fact review of log and sampled auto requests is counted once reviewers record it."</p>
    }
    .into_any()
}

#[component]
fn GroupTable(rows: Vec<GroupRow>, title: &'static str) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <table class="inbox stats-table" data-testid="stats-table">
                <thead><tr>
                    <th scope="col">{title}</th>
                    <th scope="col">"Requests"</th>
                    <th scope="col" title="auto · log · review · dual · block">"By tier"</th>
                    <th scope="col">"Approved unchanged"</th>
                    <th scope="col">"With edit"</th>
                    <th scope="col">"Rejected"</th>
                    <th scope="col">"Expired"</th>
                    <th scope="col">"Withdrawn"</th>
                    <th scope="col">"Pending"</th>
                    <th scope="col">"Approval rate"</th>
                    <th scope="col">"Median · p90 to decision"</th>
                    <th scope="col">"Should not have happened"</th>
                    <th scope="col">"Reviewer load"</th>
                </tr></thead>
                <tbody>
                    {rows.into_iter().map(|g| {
                        let s = g.stats;
                        let o = s.outcomes;
                        let load = s.reviewers.iter().take(3).map(|r| format!("{} {}", r.reviewer, r.decisions)).collect::<Vec<_>>().join(", ");
                        let more = s.reviewers.len().saturating_sub(3);
                        view! {
                            <tr data-key=s.key.clone()>
                                <th scope="row">
                                    {match g.gate.clone() {
                                        Some(gate) => view! {
                                            <code>{g.label.clone()}</code>
                                            <br/><a class="small" href=format!("/stats/gates/{}", crate::shell::query_escape(&gate))>"tune"</a>
                                        }.into_any(),
                                        None => view! { <span>{g.label.clone()}</span> }.into_any(),
                                    }}
                                </th>
                                <td class="num">{group_digits(s.total() as i64)}</td>
                                <td class="tier-mix">
                                    {s.by_tier.iter().zip(Tier::ALL).map(|(n, t)| view! {
                                        <span class=format!("tier tier-{}", t.as_str()) title=format!("{n} {}", t.as_str())>{group_digits(*n as i64)}</span>
                                    }).collect_view()}
                                </td>
                                <td class="num">{o.approved_unchanged}</td>
                                <td class="num">{o.approved_with_edit}</td>
                                <td class="num">{o.rejected}</td>
                                <td class="num">{o.expired}</td>
                                <td class="num">{o.withdrawn}</td>
                                <td class="num">{o.pending}</td>
                                <td class="num" data-testid="approval-rate">{pct(o.approval_rate())}</td>
                                <td class="num">{format!("{} · {}", duration(s.median_decision_ms), duration(s.p90_decision_ms))}</td>
                                <td class="small">{hindsight_cell(&s.hindsight)}</td>
                                <td class="small">{if more > 0 { format!("{load} and {more} more") } else { load }}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
