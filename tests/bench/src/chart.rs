//! The scale-and-distance chart: raw MB/s and peak RSS of each scenario run against the
//! emulator latency, one line per shard count, as one SVG file next to summary.json.
//!
//! Written by hand rather than with a plotting crate: two small line charts are a hundred
//! lines of SVG, while `plotters` (even with only its SVG backend) adds a dependency tree
//! to every `cargo test --workspace` build, which CI pays for on every run.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::measure::RunResult;

const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 300.0;
const MARGIN_L: f64 = 60.0;
const MARGIN_T: f64 = 40.0;
const MARGIN_B: f64 = 50.0;
const GAP: f64 = 90.0;
/// One colour per shard count, in `--shards` order (colour-blind safe, Okabe–Ito).
const COLOURS: [&str; 6] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
];

/// What a panel plots of a point.
type Value = fn(&Point) -> f64;

/// One measured point.
#[derive(Debug, Clone, Copy)]
struct Point {
    shards: u32,
    latency_ms: u64,
    mb_s: f64,
    rss_mib: f64,
}

/// Writes the chart of every scenario run in `runs` (runs that failed are left out).
pub fn write(path: &Path, runs: &[RunResult]) -> anyhow::Result<()> {
    let points: Vec<Point> = runs
        .iter()
        .filter(|r| r.complete && r.error.is_none())
        .filter_map(|r| {
            let s = r.scenario?;
            Some(Point {
                shards: s.shards,
                latency_ms: s.latency_ms,
                mb_s: r.raw_mb_per_s,
                rss_mib: r.peak_rss_mib,
            })
        })
        .collect();
    std::fs::write(path, render(&points)).with_context(|| format!("writing {}", path.display()))
}

fn render(points: &[Point]) -> String {
    let mut latencies: Vec<u64> = points.iter().map(|p| p.latency_ms).collect();
    latencies.sort_unstable();
    latencies.dedup();
    let mut shards: Vec<u32> = Vec::new();
    for p in points {
        if !shards.contains(&p.shards) {
            shards.push(p.shards);
        }
    }
    let width = 2.0 * (MARGIN_L + PANEL_W) + GAP;
    let height = MARGIN_T + PANEL_H + MARGIN_B + 20.0 * shards.len() as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let panels: [(&str, Value); 2] = [
        ("raw MB/s (first → last event)", |p| p.mb_s),
        ("peak RSS, MiB", |p| p.rss_mib),
    ];
    for (k, (title, value)) in panels.iter().enumerate() {
        let x0 = MARGIN_L + k as f64 * (PANEL_W + MARGIN_L + GAP);
        panel(&mut svg, x0, title, points, &latencies, &shards, *value);
    }
    // Legend: one line per shard count.
    for (i, n) in shards.iter().enumerate() {
        let y = MARGIN_T + PANEL_H + MARGIN_B + 12.0 + 20.0 * i as f64;
        let c = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            svg,
            r#"<line x1="{MARGIN_L}" y1="{y}" x2="{}" y2="{y}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{n} shards</text>"#,
            MARGIN_L + 30.0,
            MARGIN_L + 36.0,
            y + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One panel at `x0`: `value` of every point against its latency, a line per shard count.
fn panel(
    svg: &mut String,
    x0: f64,
    title: &str,
    points: &[Point],
    latencies: &[u64],
    shards: &[u32],
    value: Value,
) {
    let top = MARGIN_T;
    let bottom = MARGIN_T + PANEL_H;
    let max = points.iter().map(value).fold(0.0f64, f64::max);
    let y_max = nice_ceiling(max);
    // Latencies are spread evenly (they are a handful of chosen values, not a continuum).
    let x_of = |latency: u64| {
        let i = latencies.iter().position(|&l| l == latency).unwrap_or(0);
        let n = latencies.len().max(2) - 1;
        x0 + 20.0 + (PANEL_W - 40.0) * i as f64 / n as f64
    };
    let y_of = |v: f64| bottom - PANEL_H * v / y_max;
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-weight="bold">{title}</text>"#,
        x0,
        top - 14.0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{x0}" y="{top}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#888"/>"##
    );
    for t in 0..=5 {
        let v = y_max * f64::from(t) / 5.0;
        let y = y_of(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 + PANEL_W,
            x0 - 6.0,
            y + 4.0,
            tick(v)
        );
    }
    for &l in latencies {
        let x = x_of(l);
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{l} ms</text>"#,
            bottom + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">emulator latency (added to every SLS answer)</text>"#,
        x0 + PANEL_W / 2.0,
        bottom + 38.0
    );
    for (i, n) in shards.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let mut line: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.shards == *n)
            .map(|p| (x_of(p.latency_ms), y_of(value(p))))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        let coords: Vec<String> = line.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            coords.join(" ")
        );
        for (x, y) in line {
            let _ = writeln!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{c}"/>"#
            );
        }
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `v` (at least 1): a round top for the axis.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}

fn tick(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_axis_tops() {
        assert_eq!(nice_ceiling(0.3), 1.0);
        assert_eq!(nice_ceiling(1.5), 2.0);
        assert_eq!(nice_ceiling(340.0), 500.0);
        assert_eq!(nice_ceiling(500.0), 500.0);
        assert_eq!(nice_ceiling(501.0), 1000.0);
    }

    #[test]
    fn one_line_and_one_dot_per_point_per_panel() {
        let p = |shards, latency_ms, mb_s| Point {
            shards,
            latency_ms,
            mb_s,
            rss_mib: 100.0,
        };
        let svg = render(&[
            p(4, 0, 300.0),
            p(4, 100, 250.0),
            p(64, 0, 280.0),
            p(64, 100, 200.0),
        ]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("<polyline").count(),
            4,
            "2 shard counts × 2 panels"
        );
        assert_eq!(svg.matches("<circle").count(), 8);
        assert!(svg.contains(">64 shards<") && svg.contains(">100 ms<"));
    }
}
