//! `/stats/gates/:key`: tune one gate. The distribution of a gated attribute over past requests
//! coloured by outcome, with the live threshold marked; GET forms for a candidate threshold or
//! rule tier; the what-if backtest of that candidate over the stored history (the real policy
//! evaluation, see [`crate::domain::backtest`]) with the would-be misses linked; and, for admins,
//! "Save as draft", which hands the candidate to the gate's maker-checker publishing.

use super::charts::{self, Marker, Series};
use super::params::TuneQuery;
use super::{duration, load_tune, pct, window_text, CandidateView, HistogramView, TuneData};
use crate::accounts::pages::{take_flash, Messages};
use crate::domain::stats::Outcome;
use crate::domain::tier::Tier;
use crate::inbox::group_digits;
use crate::shell::{query_escape, ErrorNotice};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn TunePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let args = move || {
        (
            params.read().get("key").unwrap_or_default(),
            TuneQuery::from_query(&query.read()),
        )
    };
    let data = Resource::new(args, |(key, q)| load_tune(key, q));
    let flash = Resource::new(|| (), |_| take_flash());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let messages = flash.await.unwrap_or_default();
                match data.await {
                    Err(e) => view! {
                        <Title text="Tune a gate"/>
                        <p class="crumbs"><a href="/stats">"← Stats"</a></p>
                        <Messages view=messages/>
                        <ErrorNotice error=e/>
                    }.into_any(),
                    Ok(d) => view! { <Messages view=messages/><Tune d/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The window fields, for every form on the page to carry along.
fn window_fields(q: &TuneQuery) -> impl IntoView {
    let w = &q.window;
    view! {
        <input type="hidden" name="days" value=w.days.clone().unwrap_or_default()/>
        <input type="hidden" name="from" value=w.from.clone().unwrap_or_default()/>
        <input type="hidden" name="to" value=w.to.clone().unwrap_or_default()/>
    }
}

#[component]
fn Tune(d: TuneData) -> impl IntoView {
    let key = d.key.clone();
    let base = format!("/stats/gates/{}", query_escape(&key));
    let q = d.query.clone();
    let shown_id = d.shown.as_ref().map(|s| s.id.clone()).unwrap_or_default();
    let stats = d.stats.clone();
    view! {
        <Title text=format!("Tune: {}", d.name)/>
        <p class="crumbs"><a href="/stats">"← Stats"</a>" · "<a href=format!("/gates/{}", query_escape(&key))>{format!("Gate {}", d.name)}</a></p>
        <div class="page-head">
            <h1>{format!("Tune: {}", d.name)}</h1>
            <span class="muted"><code>{key.clone()}</code>{format!(" · live version {}", d.live_version)}</span>
        </div>
        <form method="get" action=base.clone() class="filters" data-testid="tune-window">
            <label>"Last "<input type="number" name="days" min="1" max="3650" placeholder="30" value=q.window.days.clone().unwrap_or_default() class="days"/>" days"</label>
            <label>"or from "<input type="date" name="from" value=q.window.from.clone().unwrap_or_default()/></label>
            <label>"to "<input type="date" name="to" value=q.window.to.clone().unwrap_or_default()/></label>
            <input type="hidden" name="t" value=q.t.clone().unwrap_or_default()/>
            <input type="hidden" name="value" value=q.value.clone().unwrap_or_default()/>
            <input type="hidden" name="rule" value=q.rule.clone().unwrap_or_default()/>
            <input type="hidden" name="tier" value=q.tier.clone().unwrap_or_default()/>
            <button type="submit">"Show"</button>
        </form>
        <p class="count" data-testid="considered">
            {format!("{} requests of action type {} created {}.", group_digits(d.considered as i64), d.action_types.join(", "), window_text(&d.window))}
        </p>
        <div class="detail-grid">
            <section class="card">
                <h2>"Live rules"</h2>
                <p class="muted">{format!("Base tier {}; the strictest matching rule wins.", d.base_tier)}</p>
                <table class="rules">
                    <thead><tr><th scope="col">"Rule"</th><th scope="col">"When all hold"</th><th scope="col">"Tier"</th></tr></thead>
                    <tbody>
                        {d.rules.iter().map(|r| view! {
                            <tr><td><code>{r.key.clone()}</code></td><td>{r.conditions.clone()}</td><td><span class=format!("tier tier-{}", r.tier.as_str())>{r.tier.as_str()}</span></td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
            <section class="card" data-testid="gate-stats">
                <h2>"Decided by this gate"</h2>
                {match stats {
                    None => view! { <p class="muted">"This gate decided no request in the window."</p> }.into_any(),
                    Some(s) => {
                        let o = s.outcomes;
                        view! {
                            <dl class="facts-list">
                                <dt>"Requests"</dt><dd>{group_digits(s.total() as i64)}</dd>
                                <dt>"By tier"</dt><dd class="tier-mix">{s.by_tier.iter().zip(Tier::ALL).map(|(n, t)| view! { <span class=format!("tier tier-{}", t.as_str()) title=t.as_str()>{group_digits(*n as i64)}</span> }).collect_view()}</dd>
                                <dt>"Human decisions"</dt><dd>{format!("{} approved unchanged, {} with edit, {} rejected", o.approved_unchanged, o.approved_with_edit, o.rejected)}</dd>
                                <dt>"Approval rate"</dt><dd>{pct(o.approval_rate())}</dd>
                                <dt>"Expired · withdrawn · pending"</dt><dd>{format!("{} · {} · {}", o.expired, o.withdrawn, o.pending)}</dd>
                                <dt>"Median · p90 to decision"</dt><dd>{format!("{} · {}", duration(s.median_decision_ms), duration(s.p90_decision_ms))}</dd>
                            </dl>
                        }.into_any()
                    }
                }}
            </section>
        </div>
        {match (d.shown.clone(), d.histogram.clone()) {
            (Some(shown), Some(h)) => view! {
                <Distribution base=base.clone() q=q.clone() tunables=d.tunables.clone() shown_id=shown.id.clone() attribute=shown.attribute.clone() rule=shown.rule_key.clone() live_text=shown.live_text.clone() h/>
            }.into_any(),
            _ => view! {
                <section class="card"><h2>"Distribution"</h2><p class="muted">"This gate has no amount, confidence or count threshold to move; change a rule's tier below instead."</p></section>
            }.into_any(),
        }}
        <section class="card" data-testid="try-change">
            <h2>"Try a change"</h2>
            <div class="try-forms">
                {d.shown.clone().map(|s| {
                    let value = q.value.clone().filter(|v| !v.trim().is_empty()).unwrap_or(s.live_input.clone());
                    view! {
                        <form method="get" action=base.clone() class="filters" data-testid="threshold-form">
                            {window_fields(&q)}
                            <input type="hidden" name="t" value=s.id.clone()/>
                            <label>{format!("New {} threshold for rule {} (live: {}) ", s.attribute, s.rule_key, s.live_text)}
                                <input type="text" name="value" value=value inputmode="decimal" required aria-label="Candidate threshold"/>
                            </label>
                            <button type="submit">"Backtest"</button>
                        </form>
                    }
                })}
                {(!d.rules.is_empty()).then(|| {
                    let rule = q.rule.clone().unwrap_or_default();
                    let tier = q.tier.clone().unwrap_or_default();
                    view! {
                        <form method="get" action=base.clone() class="filters" data-testid="tier-form">
                            {window_fields(&q)}
                            <input type="hidden" name="t" value=shown_id.clone()/>
                            <label>"Rule "
                                <select name="rule">
                                    {d.rules.iter().map(|r| view! { <option value=r.key.clone() selected=r.key == rule>{r.key.clone()}</option> }).collect_view()}
                                </select>
                            </label>
                            <label>"assigns "
                                <select name="tier">
                                    {Tier::ALL.iter().map(|t| view! { <option value=t.as_str() selected=t.as_str() == tier>{t.as_str()}</option> }).collect_view()}
                                    <option value="remove" selected=tier == "remove">"(remove the rule)"</option>
                                </select>
                            </label>
                            <button type="submit">"Backtest"</button>
                        </form>
                    }
                })}
            </div>
        </section>
        {d.candidate_error.clone().map(|e| view! { <section class="card" data-testid="candidate-error"><h2>"This change cannot be backtested"</h2><ErrorNotice error=e/></section> })}
        {d.candidate.clone().map(|c| view! { <Backtest c d=d.clone() base=base.clone()/> }.into_any())}
    }
    .into_any()
}

#[component]
fn Distribution(
    base: String,
    q: TuneQuery,
    tunables: Vec<(String, String)>,
    shown_id: String,
    attribute: String,
    rule: String,
    live_text: String,
    h: HistogramView,
) -> impl IntoView {
    let labels: Vec<String> = h.rows.iter().map(|r| r.tick.clone()).collect();
    let series: Vec<Series> = Outcome::ALL
        .iter()
        .filter(|o| h.rows.iter().any(|r| r.counts.get(**o) > 0))
        .map(|o| Series {
            name: charts::outcome_label(*o).to_owned(),
            color: charts::outcome_color(*o),
            values: h.rows.iter().map(|r| r.counts.get(*o)).collect(),
        })
        .collect();
    let legend_items: Vec<(&str, &str)> =
        series.iter().map(|s| (s.name.as_str(), s.color)).collect();
    let legend = charts::legend(&legend_items);
    let mut markers = Vec::new();
    if let Some(at) = h.live_at {
        markers.push(Marker {
            at,
            label: format!("live {live_text}"),
            color: "currentColor",
            dashed: false,
        });
    }
    if let (Some(at), Some(text)) = (h.candidate_at, h.candidate_text.clone()) {
        markers.push(Marker {
            at,
            label: format!("candidate {text}"),
            color: "#2456c8",
            dashed: true,
        });
    }
    let svg = charts::stacked_bars(
        &format!("Requests by {attribute} and outcome"),
        &labels,
        &series,
        &markers,
    );
    let missing = h.missing.total();
    view! {
        <section class="card" data-testid="distribution">
            <h2>{format!("Distribution of {attribute} (rule {rule})")}</h2>
            <form method="get" action=base class="filters">
                {window_fields(&q)}
                <label>"Threshold "
                    <select name="t">
                        {tunables.into_iter().map(|(id, label)| {
                            let selected = id == shown_id;
                            view! { <option value=id selected=selected>{label}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Show"</button>
            </form>
            <figure class="chart">
                <div class="chart-box" inner_html=svg></div>
                <figcaption>
                    <div inner_html=legend></div>
                    <span class="muted">"Solid line: the live threshold. Dashed: the candidate. Each bar is a range of the attribute; the rule holds to the right of its line."</span>
                </figcaption>
            </figure>
            {(missing > 0).then(|| view! { <p class="muted">{format!("{} requests did not state the {attribute}; policy treats the condition as holding for them.", group_digits(missing as i64))}</p> })}
            <details class="numbers" data-testid="distribution-table">
                <summary>"The numbers behind the chart"</summary>
                <div class="table-scroll">
                    <table class="inbox stats-table">
                        <thead><tr>
                            <th scope="col">"Range"</th>
                            {Outcome::ALL.iter().map(|o| view! { <th scope="col">{charts::outcome_label(*o)}</th> }).collect_view()}
                        </tr></thead>
                        <tbody>
                            {h.rows.iter().map(|r| view! {
                                <tr>
                                    <th scope="row">{r.range.clone()}</th>
                                    {Outcome::ALL.iter().map(|o| view! { <td class="num">{r.counts.get(*o)}</td> }).collect_view()}
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </details>
        </section>
    }
    .into_any()
}

#[component]
fn Backtest(c: CandidateView, d: TuneData, base: String) -> impl IntoView {
    let r = c.report.clone();
    let q = d.query.clone();
    let review_minutes = d.review_seconds / 60;
    let rate =
        |before: Option<f64>, after: Option<f64>| format!("{} → {}", pct(before), pct(after));
    view! {
        <section class="card" data-testid="backtest">
            <h2>{format!("What if: {}", c.description)}</h2>
            <p class="muted">"Every request above re-gated by the live policy and by the candidate, with the real evaluation."</p>
            <dl class="facts-list backtest-facts">
                <dt>"Requests re-gated"</dt><dd data-testid="bt-evaluated">{group_digits(r.evaluated as i64)}</dd>
                <dt>"Would change tier"</dt><dd data-testid="bt-changed">{format!("{} ({} less strict, {} stricter)", group_digits(r.changed_tier as i64), group_digits(r.loosened as i64), group_digits(r.tightened as i64))}</dd>
                <dt>"Would run without a human"</dt><dd data-testid="bt-released">{format!("{} that humans reviewed", group_digits(r.released as i64))}</dd>
                <dt>"Misses"</dt><dd data-testid="bt-misses">{format!("{} of those were rejected or edited by a human", group_digits(r.misses_total as i64))}</dd>
                <dt>"Newly held for a human"</dt><dd>{group_digits(r.newly_held as i64)}</dd>
                <dt>"Reviews"</dt><dd>{format!("{} → {}", group_digits(r.reviews_before as i64), group_digits(r.reviews_after as i64))}</dd>
                <dt>"Reviewer hours saved"</dt><dd data-testid="bt-hours">{format!("{:.1} (at {review_minutes} minutes per review; negative means more work)", r.reviewer_hours_saved)}</dd>
                <dt>"Expected approval rate"</dt><dd data-testid="bt-rate">{rate(r.approval_rate_before, r.approval_rate_after)}</dd>
                <dt>"Executed without a human"</dt><dd>{format!("{} → {}", group_digits(r.unattended_before as i64), group_digits(r.unattended_after as i64))}</dd>
            </dl>
            {(r.drifted > 0).then(|| view! { <p class="muted small">{format!("{} requests were gated by an older version (or an open breaker) at another tier; the comparison uses the live version for both sides.", group_digits(r.drifted as i64))}</p> })}
            {(r.assumed_after > 0 || r.assumed_before > 0).then(|| view! { <p class="muted small">{format!("The rate counts {} requests (before) and {} (after) that ran without a human as approved unchanged, since no after-the-fact review says otherwise.", r.assumed_before, r.assumed_after)}</p> })}
            <h3>"Would-be misses"</h3>
            {if c.misses.is_empty() {
                view! { <p class="muted" data-testid="no-misses">"None: no request this change lets through was rejected or edited by a human."</p> }.into_any()
            } else {
                let shown = c.misses.len() as u64;
                view! {
                    {(r.misses_total > shown).then(|| view! { <p class="muted">{format!("The first {shown} of {}.", group_digits(r.misses_total as i64))}</p> })}
                    <div class="table-scroll">
                        <table class="inbox" data-testid="misses">
                            <thead><tr><th scope="col">"Request"</th><th scope="col">"Created"</th><th scope="col">"Humans"</th><th scope="col">"Tier: live → candidate"</th><th scope="col">"Trail"</th></tr></thead>
                            <tbody>
                                {c.misses.iter().map(|m| view! {
                                    <tr>
                                        <td class="summary"><a class="title" href=format!("/inbox/{}", query_escape(&m.id))>{if m.title.is_empty() { m.id.clone() } else { m.title.clone() }}</a></td>
                                        <td><time datetime=crate::domain::time::iso_utc(m.created_at) title=crate::domain::time::iso_utc(m.created_at)>{crate::domain::time::iso_utc(m.created_at)[..10].to_owned()}</time></td>
                                        <td>{charts::outcome_label(m.outcome)}</td>
                                        <td><span class=format!("tier tier-{}", m.live_tier.as_str())>{m.live_tier.as_str()}</span>" → "<span class=format!("tier tier-{}", m.candidate_tier.as_str())>{m.candidate_tier.as_str()}</span></td>
                                        <td><a href=format!("/audit/requests/{}", query_escape(&m.id))>"audit trail"</a></td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            {if d.can_save {
                view! {
                    <form method="post" action=format!("{base}/draft") class="filters save-draft" data-testid="save-draft">
                        {window_fields(&q)}
                        <input type="hidden" name="t" value=q.t.clone().unwrap_or_default()/>
                        <input type="hidden" name="value" value=q.value.clone().unwrap_or_default()/>
                        <input type="hidden" name="rule" value=q.rule.clone().unwrap_or_default()/>
                        <input type="hidden" name="tier" value=q.tier.clone().unwrap_or_default()/>
                        {d.draft_version.map(|v| view! {
                            <label class="check"><input type="checkbox" name="replace_draft" value="yes"/>{format!("Replace the gate's current draft (version {v})")}</label>
                        })}
                        <button type="submit">"Save as draft"</button>
                        <span class="muted">"The draft is published from the gate's page; a change that loosens the policy needs a second admin."</span>
                    </form>
                }.into_any()
            } else {
                view! { <p class="muted">"Only admins can save a candidate as a draft."</p> }.into_any()
            }}
        </section>
    }
    .into_any()
}
