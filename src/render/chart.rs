//! Time series as inline SVG: a drill's recovery times and artifact sizes over its runs,
//! drawn on the server so that a page needs no script to show a trend. Points carry a
//! `<title>`, which browsers show on hover without JavaScript.

use std::fmt::Write as _;

use super::html;
use crate::human::{human_bytes, human_ms};

/// What the y values are, which decides round tick steps and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds.
    Millis,
    /// Bytes (ticks on powers of 1024).
    Bytes,
}

impl Unit {
    fn label(self, v: f64) -> String {
        let v = v.max(0.0).round() as u64;
        match self {
            _ if v == 0 => "0".into(),
            Unit::Millis => human_ms(v),
            Unit::Bytes => human_bytes(v),
        }
    }

    /// The scale ticks are counted in: 1 ms, 1 s or 1 min; 1 B, 1 KiB, 1 MiB…
    fn base(self, max: f64) -> f64 {
        match self {
            Unit::Millis if max >= 120_000.0 => 60_000.0,
            Unit::Millis if max >= 1_000.0 => 1_000.0,
            Unit::Millis => 1.0,
            Unit::Bytes => {
                let mut b = 1.0;
                while max / b >= 1024.0 && b < 1024f64.powi(4) {
                    b *= 1024.0;
                }
                b
            }
        }
    }
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// `#rrggbb`.
    pub colour: &'static str,
    /// `(time, value, what hovering the point says)`, in any order.
    pub points: Vec<(jiff::Timestamp, f64, String)>,
    /// Join the points with a line (false: marks alone, e.g. failed runs among passing).
    pub line: bool,
}

/// A horizontal line the values should stay under (an objective).
#[derive(Debug, Clone)]
pub struct Target {
    pub value: f64,
    pub label: String,
}

/// A round step between y ticks giving at most `max_ticks` intervals up to `max`.
fn y_step(max: f64, unit: Unit, max_ticks: u32) -> f64 {
    let base = unit.base(max);
    let raw = (max / base / f64::from(max_ticks)).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let nice = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    // Never a fraction of the base unit (no "0.5 s" ticks labelled "500ms").
    nice.max(1.0) * base
}

/// A line chart of `series` over time, with an optional target line. A target far above
/// every value is named at the top instead of drawn, so that it does not flatten the
/// lines into the axis.
pub fn time_series_svg(
    title: &str,
    unit: Unit,
    series: &[Series],
    target: Option<&Target>,
) -> String {
    const W: f64 = 760.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 78.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 44.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" width=\"{W}\" \
         height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"system-ui, sans-serif\" font-size=\"12\">\n\
         <title>{}</title>",
        html(title)
    );
    let all: Vec<&(jiff::Timestamp, f64, String)> =
        series.iter().flat_map(|s| s.points.iter()).collect();
    if all.is_empty() {
        let _ = writeln!(
            s,
            "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"#f6f8fa\"/>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#57606a\">no data yet</text>\n</svg>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
        return s;
    }
    let t0 = all.iter().map(|p| p.0.as_second()).min().unwrap_or(0);
    let t1 = all.iter().map(|p| p.0.as_second()).max().unwrap_or(0);
    let data_max = all.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1.0);
    let drawn_target = target.filter(|t| t.value <= data_max * 2.0);
    let vmax = data_max.max(drawn_target.map_or(0.0, |t| t.value));
    let step = y_step(vmax, unit, 4);
    let ymax = (vmax / step).ceil() * step;
    // One point alone sits in the middle.
    let x_of = |t: i64| {
        if t1 == t0 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + (t - t0) as f64 * plot_w / (t1 - t0) as f64
        }
    };
    let y_of = |v: f64| TOP + plot_h - v.max(0.0) / ymax * plot_h;

    // Horizontal grid and y labels.
    let mut v = 0.0;
    while v <= ymax + step / 2.0 {
        let y = y_of(v);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#eaeef2\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#57606a\">{}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            html(&unit.label(v))
        );
        v += step;
    }
    // Time labels: the first and last run, and evenly between them when there is room.
    let span = t1 - t0;
    // The format is fine enough for the gap between ticks (a third of the span), so that
    // no two ticks read the same.
    let fmt = if span < 3 * 180 {
        "%H:%M:%S"
    } else if span < 3 * 86_400 {
        "%m-%d %H:%M"
    } else {
        "%Y-%m-%d"
    };
    let label_of = |t: i64| {
        jiff::Timestamp::from_second(t)
            .map(|ts| ts.strftime(fmt).to_string())
            .unwrap_or_default()
    };
    let mut ticks: Vec<i64> = if span == 0 {
        vec![t0]
    } else {
        (0..=3).map(|i| t0 + span * i / 3).collect()
    };
    // Still equal (rounding at the format's unit): keep the first of each run of equal
    // labels, and the last tick rather than the one before it.
    let mut kept: Vec<i64> = Vec::with_capacity(ticks.len());
    for t in ticks.drain(..) {
        match kept.last() {
            Some(prev) if label_of(*prev) == label_of(t) => {
                if kept.len() > 1 {
                    kept.pop();
                    kept.push(t);
                }
            }
            _ => kept.push(t),
        }
    }
    let ticks = kept;
    let axis_y = TOP + plot_h;
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{axis_y}\" x2=\"{:.1}\" y2=\"{axis_y}\" stroke=\"#8c959f\"/>",
        LEFT + plot_w
    );
    for (i, t) in ticks.iter().enumerate() {
        let x = x_of(*t);
        let anchor = match (i, ticks.len()) {
            (_, 1) => "middle",
            (0, _) => "start",
            (i, n) if i + 1 == n => "end",
            _ => "middle",
        };
        let label = label_of(*t);
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{axis_y}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#8c959f\"/>\n\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"#57606a\">{}</text>",
            axis_y + 4.0,
            axis_y + 18.0,
            html(&label)
        );
    }
    if let (Some(t), None) = (target, drawn_target) {
        let _ = writeln!(
            s,
            "<text class=\"target\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#c62828\">{} \
             (above the chart)</text>",
            LEFT + plot_w,
            TOP + 2.0,
            html(&t.label)
        );
    }
    if let Some(t) = drawn_target {
        let y = y_of(t.value);
        let _ = writeln!(
            s,
            "<g class=\"target\"><title>{}</title>\n<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" \
             y2=\"{y:.1}\" stroke=\"#c62828\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#c62828\">{}</text></g>",
            html(&t.label),
            LEFT + plot_w,
            LEFT + plot_w - 4.0,
            y - 5.0,
            html(&t.label)
        );
    }
    for se in series {
        let mut pts: Vec<&(jiff::Timestamp, f64, String)> = se.points.iter().collect();
        pts.sort_by_key(|p| p.0);
        let _ = writeln!(s, "<g class=\"series\"><title>{}</title>", html(&se.name));
        if se.line && pts.len() > 1 {
            let path: Vec<String> = pts
                .iter()
                .map(|p| format!("{:.1},{:.1}", x_of(p.0.as_second()), y_of(p.1)))
                .collect();
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
                se.colour,
                path.join(" ")
            );
        }
        for p in pts {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"><title>{}</title></circle>",
                x_of(p.0.as_second()),
                y_of(p.1),
                se.colour,
                html(&p.2)
            );
        }
        s.push_str("</g>\n");
    }
    // A legend when there is more than one line.
    if series.len() > 1 {
        let mut x = LEFT;
        for se in series {
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#1f2328\">{}</text>",
                H - 14.0,
                se.colour,
                x + 14.0,
                H - 5.0,
                html(&se.name)
            );
            x += 24.0 + se.name.chars().count() as f64 * 7.0;
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    /// The x axis's labels, in order.
    fn x_labels(svg: &str) -> Vec<String> {
        svg.lines()
            .filter(|l| l.contains("fill=\"#57606a\"") && l.contains("<text"))
            .filter_map(|l| l.split('>').nth(1))
            .filter_map(|l| l.split('<').next())
            .map(str::to_string)
            .filter(|l| l.contains('-') || l.contains(':'))
            .collect()
    }

    #[test]
    fn chart_time_labels_never_repeat() {
        for (from, to) in [
            // Two and a half days: by day, two ticks fell on one day.
            ("2026-11-20T01:00:00Z", "2026-11-22T13:00:00Z"),
            // Two minutes: by minute, ticks repeated.
            ("2026-11-20T10:00:00Z", "2026-11-20T10:02:00Z"),
            ("2026-11-01T00:00:00Z", "2026-11-30T00:00:00Z"),
            ("2026-11-20T10:00:00Z", "2026-11-20T10:00:30Z"),
        ] {
            let s = Series {
                line: true,
                name: "rto".into(),
                colour: "#2e7d32",
                points: vec![(t(from), 1.0, String::new()), (t(to), 2.0, String::new())],
            };
            let svg = time_series_svg("rto", Unit::Millis, std::slice::from_ref(&s), None);
            let labels = x_labels(&svg);
            assert!(labels.len() >= 2, "{from}..{to}: {labels:?}");
            let mut unique = labels.clone();
            unique.dedup();
            assert_eq!(unique, labels, "{from}..{to}: repeated labels");
        }
    }

    #[test]
    fn chart_steps_are_round_in_their_unit() {
        assert_eq!(y_step(4_350.0, Unit::Millis, 4), 2_000.0);
        assert_eq!(y_step(700.0, Unit::Millis, 4), 200.0);
        assert_eq!(y_step(1_500.0, Unit::Millis, 4), 1_000.0);
        // Ten minutes: ticks every five.
        assert_eq!(y_step(600_000.0, Unit::Millis, 4), 300_000.0);
        assert_eq!(
            y_step(5.0 * 1024.0 * 1024.0, Unit::Bytes, 4),
            2.0 * 1024.0 * 1024.0
        );
        assert_eq!(y_step(3.0, Unit::Bytes, 4), 1.0);
    }

    #[test]
    fn chart_escapes_and_handles_few_points() {
        let nasty = "<script>alert('x')</script>&";
        let empty = time_series_svg(nasty, Unit::Millis, &[], None);
        assert!(empty.contains("no data yet") && empty.ends_with("</svg>\n"));
        assert!(!empty.contains("<script"));
        let one = Series {
            line: true,
            name: nasty.into(),
            colour: "#2e7d32",
            points: vec![(t("2026-11-26T10:00:00Z"), 1500.0, nasty.into())],
        };
        let svg = time_series_svg(
            "rto",
            Unit::Millis,
            std::slice::from_ref(&one),
            Some(&Target {
                value: 3000.0,
                label: format!("target {nasty}"),
            }),
        );
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(!svg.contains("<polyline"), "one point is no line");
        assert!(svg.contains("stroke-dasharray"), "the target line");
        let far = Target {
            value: 600_000.0,
            label: "rto 10m00s".into(),
        };
        let svg = time_series_svg("rto", Unit::Millis, std::slice::from_ref(&one), Some(&far));
        assert!(!svg.contains("stroke-dasharray") && svg.contains("rto 10m00s (above the chart)"));
        assert!(svg.contains(">2.0s</text>"), "scaled to the data: {svg}");
        let two = Series {
            points: vec![
                (t("2026-11-27T10:00:00Z"), 2500.0, "b".into()),
                (t("2026-11-26T10:00:00Z"), 1500.0, "a".into()),
            ],
            ..one
        };
        let svg = time_series_svg("rto", Unit::Millis, &[two], None);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(">11-26 10:00</text>") && svg.contains(">11-27 10:00</text>"));
    }
}
