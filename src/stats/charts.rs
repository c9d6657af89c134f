//! Charts as server-rendered SVG text: stacked bars (volume by tier, a threshold's distribution
//! by outcome) and rate lines (approval and correction rates over time). No JavaScript: the
//! SVG is part of the page's HTML, each bar and point carries a `<title>` tooltip, and every
//! chart has a table with the same numbers beside it.
//!
//! Colours are SVG presentation attributes (the page's Content-Security-Policy forbids inline
//! styles); text and grid lines use `currentColor`, so they follow the light or dark theme.

use crate::domain::stats::Outcome;
use crate::domain::tier::Tier;
use std::fmt::Write as _;

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;
/// More x labels than this overlap; the rest are left out (their bars keep their tooltips).
const MAX_X_LABELS: usize = 12;

pub fn tier_color(t: Tier) -> &'static str {
    match t {
        Tier::Auto => "#3d9a5b",
        Tier::Log => "#4a86c8",
        Tier::Review => "#d49a1f",
        Tier::Dual => "#b9508a",
        Tier::Block => "#c8443b",
    }
}

pub fn outcome_color(o: Outcome) -> &'static str {
    match o {
        Outcome::AutoApproved => "#8cc9a0",
        Outcome::Blocked => "#7b2d26",
        Outcome::ApprovedUnchanged => "#3d9a5b",
        Outcome::ApprovedWithEdit => "#d49a1f",
        Outcome::Rejected => "#c8443b",
        Outcome::Expired => "#8a8f98",
        Outcome::Withdrawn => "#b7bcc4",
        Outcome::Pending => "#4a86c8",
    }
}

pub fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::AutoApproved => "Executed without review",
        Outcome::Blocked => "Blocked",
        Outcome::ApprovedUnchanged => "Approved unchanged",
        Outcome::ApprovedWithEdit => "Approved with edit",
        Outcome::Rejected => "Rejected",
        Outcome::Expired => "Expired",
        Outcome::Withdrawn => "Withdrawn",
        Outcome::Pending => "Pending",
    }
}

/// One stacked layer of a bar chart: a value per category.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<u64>,
}

/// One line of a rate chart: a rate in [0, 1] per category, `None` where there is no data
/// (the line breaks there rather than pretending zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<Option<f64>>,
}

/// A vertical line across a bar chart, at `at` categories from the left edge (2.5 is the
/// middle of the third bar; 3.0 is the boundary after it).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub at: f64,
    pub label: String,
    pub color: &'static str,
    pub dashed: bool,
}

/// Escapes text for SVG/XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The smallest "round" number (1, 2, 5 times a power of ten) at or above `v`, for axis tops.
pub fn nice_max(v: u64) -> u64 {
    if v <= 5 {
        return v.max(1);
    }
    let mut magnitude = 1u64;
    while magnitude.saturating_mul(10) <= v {
        magnitude *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10 * magnitude)
}

fn open(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="chart-svg" role="img" aria-label="{t}" font-size="11" fill="currentColor"><title>{t}</title>"#,
        t = esc(title)
    );
}

fn plot_w() -> f64 {
    W - LEFT - RIGHT
}

fn plot_h() -> f64 {
    H - TOP - BOTTOM
}

/// Which of `n` x labels to print: every k-th so at most [`MAX_X_LABELS`] show.
fn label_step(n: usize) -> usize {
    n.div_ceil(MAX_X_LABELS).max(1)
}

fn x_labels(out: &mut String, labels: &[String], slot: f64) {
    let step = label_step(labels.len());
    for (i, l) in labels.iter().enumerate() {
        if i % step != 0 {
            continue;
        }
        let x = LEFT + slot * (i as f64 + 0.5);
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{}</text>"#,
            esc(l),
            y = H - BOTTOM + 16.0
        );
    }
}

fn y_grid(out: &mut String, ticks: &[(f64, String)]) {
    for (frac, label) in ticks {
        let y = TOP + plot_h() * (1.0 - frac);
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="currentColor" stroke-opacity="0.15"/><text x="{lx}" y="{ty:.1}" text-anchor="end">{}</text>"#,
            esc(label),
            x2 = W - RIGHT,
            lx = LEFT - 6.0,
            ty = y + 4.0
        );
    }
}

/// A legend as HTML (`<ul class="legend">`), a colour swatch per item, to put beside a chart.
pub fn legend(items: &[(&str, &str)]) -> String {
    let mut out = String::from(r#"<ul class="legend">"#);
    for (name, color) in items {
        let _ = write!(
            out,
            r#"<li><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" rx="2" fill="{color}"/></svg>{}</li>"#,
            esc(name)
        );
    }
    out.push_str("</ul>");
    out
}

/// Stacked bars, one per label, layers in `series` order from the bottom.
pub fn stacked_bars(
    title: &str,
    labels: &[String],
    series: &[Series],
    markers: &[Marker],
) -> String {
    let n = labels.len();
    let totals: Vec<u64> = (0..n)
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let top = nice_max(totals.iter().copied().max().unwrap_or(0));
    let mut out = String::with_capacity(256 + n * series.len() * 120);
    open(&mut out, title);
    let ticks: Vec<(f64, String)> = (0..=4)
        .map(|i| {
            let v = top as f64 * f64::from(i) / 4.0;
            let text = if v.fract() == 0.0 {
                crate::inbox::group_digits(v as i64)
            } else {
                format!("{v:.1}")
            };
            (f64::from(i) / 4.0, text)
        })
        .collect();
    y_grid(&mut out, &ticks);
    if n == 0 {
        out.push_str(
            r#"<text x="360" y="120" text-anchor="middle">No data in this window</text></svg>"#,
        );
        return out;
    }
    let slot = plot_w() / n as f64;
    let bar = (slot * 0.8).max(1.0);
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = 0u64;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let y0 = TOP + plot_h() * (1.0 - base as f64 / top as f64);
            let y1 = TOP + plot_h() * (1.0 - (base + v) as f64 / top as f64);
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y1:.1}" width="{bar:.1}" height="{h:.1}" fill="{c}"><title>{l}: {name} {v}</title></rect>"#,
                h = (y0 - y1).max(0.5),
                c = s.color,
                l = esc(label),
                name = esc(&s.name),
            );
            base += v;
        }
    }
    x_labels(&mut out, labels, slot);
    // Labels step down one line per marker, so a candidate next to the live threshold stays
    // readable.
    for (i, m) in markers.iter().enumerate() {
        let x = LEFT + slot * m.at.clamp(0.0, n as f64);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{y2:.1}" stroke="{c}" stroke-width="2"{dash}><title>{l}</title></line><text x="{tx:.1}" y="{ty}" fill="{c}" font-weight="600">{l}</text>"#,
            y2 = H - BOTTOM,
            c = m.color,
            dash = if m.dashed {
                r#" stroke-dasharray="5 3""#
            } else {
                ""
            },
            l = esc(&m.label),
            tx = x + 4.0,
            ty = TOP + 10.0 + 13.0 * i as f64,
        );
    }
    out.push_str("</svg>");
    out
}

/// Rates (0 to 100%) per label, one line per series, with a dot and tooltip per point.
pub fn rate_lines(title: &str, labels: &[String], lines: &[Line]) -> String {
    let n = labels.len();
    let mut out = String::with_capacity(256 + n * lines.len() * 100);
    open(&mut out, title);
    let ticks: Vec<(f64, String)> = (0..=4)
        .map(|i| (f64::from(i) / 4.0, format!("{}%", i * 25)))
        .collect();
    y_grid(&mut out, &ticks);
    if n == 0 {
        out.push_str(
            r#"<text x="360" y="120" text-anchor="middle">No data in this window</text></svg>"#,
        );
        return out;
    }
    let slot = plot_w() / n as f64;
    let point = |i: usize, v: f64| {
        (
            LEFT + slot * (i as f64 + 0.5),
            TOP + plot_h() * (1.0 - v.clamp(0.0, 1.0)),
        )
    };
    for line in lines {
        // A polyline per unbroken run of points.
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, out: &mut String| {
            if run.len() > 1 {
                let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(
                    out,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                    pts.join(" "),
                    line.color
                );
            }
            run.clear();
        };
        for (i, v) in line.values.iter().enumerate() {
            match v {
                Some(v) => run.push(point(i, *v)),
                None => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
        for (i, v) in line.values.iter().enumerate() {
            if let Some(v) = v {
                let (x, y) = point(i, *v);
                let _ = write!(
                    out,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{c}"><title>{l}: {name} {p:.1}%</title></circle>"#,
                    c = line.color,
                    l = esc(labels.get(i).map(String::as_str).unwrap_or("")),
                    name = esc(&line.name),
                    p = v * 100.0
                );
            }
        }
    }
    x_labels(&mut out, labels, slot);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    #[test]
    fn legends_escape_names() {
        let html = legend(&[("a<b", "#123456"), ("c", "#654321")]);
        assert_eq!(count(&html, "<li>"), 2);
        assert!(html.contains(r##"fill="#123456"/></svg>a&lt;b</li>"##));
    }

    #[test]
    fn nice_max_rounds_up_to_1_2_5() {
        let cases = [
            (0, 1),
            (3, 3),
            (7, 10),
            (10, 10),
            (11, 20),
            (150, 200),
            (201, 500),
            (999, 1000),
            (5000, 5000),
        ];
        for (v, want) in cases {
            assert_eq!(nice_max(v), want, "{v}");
        }
    }

    #[test]
    fn stacked_bars_draw_one_rect_per_nonzero_layer_scaled_to_the_axis() {
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let series = vec![
            Series {
                name: "auto".into(),
                color: "#111111",
                values: vec![2, 0, 5],
            },
            Series {
                name: "review".into(),
                color: "#222222",
                values: vec![3, 0, 5],
            },
        ];
        let svg = stacked_bars("Volume <by> tier", &labels, &series, &[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(count(&svg, "<rect"), 4, "empty bar b draws nothing");
        assert!(
            svg.contains("<title>Volume &lt;by&gt; tier</title>"),
            "escaped title"
        );
        assert!(svg.contains("<title>c: review 5</title>"));
        // Axis top is 10 (the tallest stack): bar c fills the plot from bottom to top.
        assert!(svg.contains(r#">10</text>"#));
        let c_review = svg
            .split("<rect")
            .find(|r| r.contains("c: review"))
            .unwrap();
        assert!(c_review.contains(&format!(r#"y="{TOP:.1}""#)), "{c_review}");
    }

    #[test]
    fn markers_sit_on_category_boundaries() {
        let labels: Vec<String> = (0..4).map(|i| i.to_string()).collect();
        let series = vec![Series {
            name: "x".into(),
            color: "#000000",
            values: vec![1; 4],
        }];
        let m = Marker {
            at: 2.0,
            label: "live 1,000".into(),
            color: "#ff0000",
            dashed: true,
        };
        let svg = stacked_bars("t", &labels, &series, &[m]);
        let x = LEFT + plot_w() / 4.0 * 2.0;
        assert!(
            svg.contains(&format!(r#"x1="{x:.1}" x2="{x:.1}""#)),
            "{svg}"
        );
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains(">live 1,000</text>"));
    }

    #[test]
    fn rate_lines_break_where_there_is_no_data() {
        let labels: Vec<String> = (0..5).map(|i| format!("d{i}")).collect();
        let line = Line {
            name: "approval".into(),
            color: "#3d9a5b",
            values: vec![Some(0.5), Some(1.0), None, Some(0.0), Some(0.25)],
        };
        let svg = rate_lines("Rates", &labels, &[line]);
        assert_eq!(count(&svg, "<polyline"), 2);
        assert_eq!(count(&svg, "<circle"), 4);
        assert!(svg.contains("d1: approval 100.0%"));
        assert!(svg.contains(">100%</text>"));
    }

    #[test]
    fn empty_charts_say_so_and_many_labels_are_thinned() {
        assert!(stacked_bars("t", &[], &[], &[]).contains("No data"));
        assert!(rate_lines("t", &[], &[]).contains("No data"));
        let labels: Vec<String> = (0..90).map(|i| format!("L{i}")).collect();
        let svg = rate_lines("t", &labels, &[]);
        let shown = labels
            .iter()
            .filter(|l| svg.contains(&format!(">{l}</text>")))
            .count();
        assert!((1..=MAX_X_LABELS).contains(&shown), "{shown}");
    }
}
