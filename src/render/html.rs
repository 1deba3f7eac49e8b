//! A run as one self-contained HTML5 page: inline CSS, an inline SVG timeline, no
//! JavaScript and nothing loaded from elsewhere (a Content-Security-Policy says so too),
//! so it can be mailed, archived as a CI artifact or opened from disk.

use std::fmt::Write as _;

use super::{html, outcome_key, run_ms, stage_error, status_label, verdict_sentence};
use crate::human::{human_bytes, human_ms};
use crate::report::{ErrorReport, Outcome, RunReport, Stage, StageReport};

/// The whole report as an HTML page.
pub fn html_page(r: &RunReport) -> String {
    let status = status_label(r);
    let mut p = String::new();
    p.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    p.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    p.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    let _ = writeln!(p, "<title>firedrill {}: {status}</title>", html(&r.drill));
    let _ = writeln!(p, "<style>{CSS}</style>\n</head>\n<body>");
    let _ = writeln!(
        p,
        "<header>\n<h1>drill <span class=\"drill\">{}</span> \
         <span class=\"badge v-{}\">{status}</span></h1>\n<p class=\"verdict\">{}</p>\n</header>",
        html(&r.drill),
        r.status(),
        html(&verdict_sentence(r))
    );
    if let Some(e) = &r.error {
        p.push_str(&error_box(r, e));
    }
    p.push_str(&summary(r));
    let _ = writeln!(
        p,
        "<section>\n<h2>Timeline</h2>\n<div class=\"timeline\">\n{}</div>\n</section>",
        stage_timeline_svg(r)
    );
    p.push_str(&stage_table(r));
    p.push_str(&assertion_table(r));
    p.push_str(&fingerprint(r));
    let _ = writeln!(
        p,
        "<footer>firedrill {} &middot; report version {}</footer>\n</body>\n</html>",
        html(env!("CARGO_PKG_VERSION")),
        r.report_version
    );
    p
}

pub(crate) const CSS: &str = "
:root{color-scheme:light;--ok:#2e7d32;--bad:#c62828;--late:#e65100;--stop:#6d4c41;--skip:#757575}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328;margin:0 auto;max-width:1100px;padding:1.5rem}
h1{font-size:1.6rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin:1.8rem 0 .6rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
.verdict{margin:.2rem 0 1rem;color:#57606a}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;color:#fff;font-size:.95rem;vertical-align:middle}
.v-passed{background:var(--ok)}.v-failed{background:var(--bad)}.v-error{background:var(--late)}.v-cancelled,.v-interrupted,.v-stopped{background:var(--stop)}.v-lost{background:var(--late)}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid #eaeef2}
th{background:#f6f8fa;font-weight:600}table.summary th{width:12rem}
td.num{text-align:right;white-space:nowrap}code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.mono{word-break:break-all}pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;white-space:pre-wrap;margin:.3rem 0}
.o{display:inline-block;padding:0 .45rem;border-radius:.3rem;color:#fff;white-space:nowrap}
.o-passed{background:var(--ok)}.o-failed{background:var(--bad)}.o-timed-out{background:var(--late)}.o-cancelled,.o-interrupted,.o-stopped{background:var(--stop)}.o-skipped{background:var(--skip)}
.error{border:1px solid var(--bad);border-left:6px solid var(--bad);background:#fff5f5;padding:.6rem 1rem;border-radius:.3rem;margin:1rem 0}
.error h2{border:0;margin:0 0 .3rem;color:var(--bad)}.hint{color:#1f2328}.hint::before{content:'hint: ';font-weight:600}
.null{color:#8c959f;font-style:italic}.timeline{overflow-x:auto}ul.mismatch li{margin:.2rem 0}
footer{margin-top:2rem;color:#8c959f;font-size:.85rem}
";

pub(crate) fn error_box(r: &RunReport, e: &ErrorReport) -> String {
    let at = r
        .failed_stage
        .map(|s| format!(" at stage {s}"))
        .unwrap_or_default();
    let kind = format!(" <span class=\"mono\">({})</span>", e.kind.as_str());
    format!(
        "<section class=\"error\">\n<h2>Error{}{kind}</h2>\n{}</section>\n",
        html(&at),
        error_detail(e)
    )
}

/// An error's message, hint and tool output, as block content.
fn error_detail(e: &ErrorReport) -> String {
    let mut d = format!("<p class=\"message\">{}</p>\n", html(&e.message));
    if let Some(h) = &e.hint {
        let _ = writeln!(d, "<p class=\"hint\">{}</p>", html(h));
    }
    if let Some(t) = &e.stderr_tail {
        let _ = writeln!(
            d,
            "<details><summary>tool output (last lines)</summary><pre>{}</pre></details>",
            html(t)
        );
    }
    d
}

pub(crate) fn summary(r: &RunReport) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("drill", html(&r.drill)),
        (
            "run id",
            format!("<span class=\"mono\">{}</span>", html(&r.run_id)),
        ),
        ("started", html(&time(r.started_at))),
        ("finished", html(&time(r.finished_at))),
        ("wall time", html(&human_ms(run_ms(r)))),
    ];
    if r.stages
        .iter()
        .any(|s| crate::report::RECOVERY_STAGES.contains(&s.stage) && s.outcome != Outcome::Skipped)
    {
        rows.push((
            "recovery time",
            format!(
                "{} <span class=\"null\">({})</span>",
                html(&human_ms(r.recovery_ms())),
                crate::report::RTO_DEFINITION
            ),
        ));
    }
    rows.push(("exit code", r.exit_code.to_string()));
    if let Some(s) = r.failed_stage {
        rows.push(("failed stage", html(s.as_str())));
    }
    if let Some(a) = &r.artifact {
        if !a.location.is_empty() {
            rows.push((
                "artifact",
                format!("<span class=\"mono\">{}</span>", html(&a.location)),
            ));
        }
        if !a.manifest.is_empty() {
            rows.push((
                "manifest",
                format!("<span class=\"mono\">{}</span>", html(&a.manifest)),
            ));
        }
        if r.recovery.is_none() {
            rows.push((
                "artifact size",
                html(&format!(
                    "{} encrypted ({} bytes); {} compressed; {} plain",
                    human_bytes(a.encrypted_bytes),
                    a.encrypted_bytes,
                    human_bytes(a.compressed_bytes),
                    human_bytes(a.plain_bytes)
                )),
            ));
        }
        if !a.sha256.is_empty() {
            rows.push((
                "artifact sha256",
                format!("<span class=\"mono\">{}</span>", html(&a.sha256)),
            ));
        }
    }
    let optional = [
        ("source version", &r.source_version),
        ("dump tool", &r.dump_tool),
        ("sandbox image", &r.sandbox_image),
        ("sandbox kept", &r.kept_sandbox),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            rows.push((name, format!("<span class=\"mono\">{}</span>", html(v))));
        }
    }
    if let (Some(t), Some(n)) = (r.tables, r.rows) {
        rows.push(("fingerprint", format!("{t} tables, {n} rows")));
    }
    if let Some(rec) = &r.recovery {
        for (k, v) in rec.lines() {
            rows.push((k, format!("<span class=\"mono\">{}</span>", html(&v))));
        }
    }
    let mut s = String::from("<section>\n<h2>Summary</h2>\n<table class=\"summary\">\n");
    for (name, value) in rows {
        let _ = writeln!(s, "<tr><th>{}</th><td>{value}</td></tr>", html(name));
    }
    s.push_str("</table>\n</section>\n");
    s
}

pub(crate) fn time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn outcome_pill(o: Outcome) -> String {
    format!(
        "<span class=\"o o-{}\">{}</span>",
        outcome_key(o),
        html(o.as_str())
    )
}

pub(crate) fn stage_table(r: &RunReport) -> String {
    let mut t = String::from(
        "<section>\n<h2>Stages</h2>\n<table class=\"stages\">\n<tr><th>stage</th><th>outcome</th>\
         <th>start</th><th>duration</th><th>timeout</th><th>bytes</th><th>attempts</th>\
         <th>notes</th><th>error</th></tr>\n",
    );
    if r.stages.is_empty() {
        t.push_str("<tr><td colspan=\"9\" class=\"null\">no stage ran</td></tr>\n");
    }
    let (placed, _) = layout(&r.stages);
    for (start, s) in placed {
        let bytes = s
            .bytes
            .map(|b| format!("<span title=\"{b} bytes\">{}</span>", html(&human_bytes(b))))
            .unwrap_or_default();
        let notes: Vec<String> = s.notes.iter().map(|n| html(n)).collect();
        let error = stage_error(r, s).map(error_detail).unwrap_or_default();
        // A skipped stage has no start, duration or attempts worth showing.
        let (start, duration, attempts) = if s.outcome == Outcome::Skipped {
            Default::default()
        } else {
            (
                format!("+{}", human_ms(start)),
                human_ms(s.duration_ms),
                s.attempts.to_string(),
            )
        };
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{bytes}</td><td class=\"num\">{attempts}</td>\
             <td>{}</td><td>{error}</td></tr>",
            html(s.stage.as_str()),
            outcome_pill(s.outcome),
            html(&start),
            html(&duration),
            html(&human_ms(s.timeout_ms)),
            notes.join("<br>"),
        );
    }
    t.push_str("</table>\n</section>\n");
    t
}

pub(crate) fn assertion_table(r: &RunReport) -> String {
    let mut t = String::from("<section>\n<h2>Assertions</h2>\n");
    if r.assertions.is_empty() {
        t.push_str("<p class=\"null\">no assertions were evaluated</p>\n</section>\n");
        return t;
    }
    let failed = r.assertions.iter().filter(|a| !a.passed).count();
    let _ = writeln!(
        t,
        "<p>{} of {} passed</p>",
        r.assertions.len() - failed,
        r.assertions.len()
    );
    t.push_str(
        "<table class=\"assertions\">\n<tr><th>assertion</th><th>expected</th><th>actual</th>\
         <th>result</th><th>error</th></tr>\n",
    );
    for a in &r.assertions {
        let actual = match &a.actual {
            Some(v) => format!("<code>{}</code>", html(v)),
            None => "<span class=\"null\">NULL</span>".to_string(),
        };
        let result = if a.passed {
            outcome_pill(Outcome::Passed)
        } else {
            outcome_pill(Outcome::Failed)
        };
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td><code>{}</code></td><td>{actual}</td><td>{result}</td><td>{}</td></tr>",
            html(&a.name),
            html(&a.expected),
            a.error.as_deref().map(html).unwrap_or_default()
        );
    }
    t.push_str("</table>\n</section>\n");
    t
}

pub(crate) fn fingerprint(r: &RunReport) -> String {
    let mut f = String::from("<section>\n<h2>Fingerprint</h2>\n");
    if !r.fingerprint_mismatches.is_empty() {
        let _ = writeln!(
            f,
            "<p>{} mismatch{} between the dump and the restored database:</p>\n<ul class=\"mismatch\">",
            r.fingerprint_mismatches.len(),
            if r.fingerprint_mismatches.len() == 1 { "" } else { "es" }
        );
        for m in &r.fingerprint_mismatches {
            let _ = writeln!(f, "<li>{}</li>", html(&m.to_string()));
        }
        f.push_str("</ul>\n");
    } else if !r.assertions.is_empty()
        || r.stages
            .iter()
            .any(|s| s.stage == Stage::Verify && s.outcome == Outcome::Passed)
    {
        // Assertions and guards run after the fingerprint compared clean: a run that
        // failed one of them still matched its dump.
        f.push_str("<p>the restored database matches the dump's fingerprint</p>\n");
    } else {
        f.push_str("<p class=\"null\">not compared: verification did not complete</p>\n");
    }
    f.push_str("</section>\n");
    f
}

/// Each stage with its start offset in milliseconds, and the run's total. Stages run one
/// after another, except dump, encrypt and upload, which are one streaming pipeline: they
/// all start together and the next stage starts when the longest of them ends.
fn layout(stages: &[StageReport]) -> (Vec<(u64, &StageReport)>, u64) {
    let mut cursor = 0u64;
    let mut pipeline_start: Option<u64> = None;
    let mut placed = Vec::with_capacity(stages.len());
    for s in stages {
        let start = if matches!(s.stage, Stage::Dump | Stage::Encrypt | Stage::Upload) {
            *pipeline_start.get_or_insert(cursor)
        } else {
            pipeline_start = None;
            cursor
        };
        cursor = cursor.max(start.saturating_add(s.duration_ms));
        placed.push((start, s));
    }
    (placed, cursor)
}

/// Colour of a stage outcome in the timeline (the SVG stands alone, so no CSS).
fn colour(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "#2e7d32",
        Outcome::Failed => "#c62828",
        Outcome::TimedOut => "#e65100",
        Outcome::Cancelled | Outcome::Interrupted | Outcome::Stopped => "#6d4c41",
        Outcome::Skipped => "#9e9e9e",
    }
}

/// The step between axis ticks: a round duration giving at most five intervals.
fn tick_step(total_ms: u64) -> u64 {
    const STEPS: [u64; 24] = [
        1, 2, 5, 10, 20, 50, 100, 200, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000,
        60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|step| total_ms.div_ceil(*step) <= 5)
        .unwrap_or_else(|| total_ms.div_ceil(5).div_ceil(3_600_000) * 3_600_000)
}

/// The stages as a Gantt-like inline SVG: a row per stage, a bar from its start offset
/// for its duration, coloured by outcome and labelled with the duration. Standalone
/// (its own namespace, colours and fonts), so it can be embedded elsewhere too.
pub fn stage_timeline_svg(r: &RunReport) -> String {
    const LABEL_W: f64 = 90.0;
    const CHART_W: f64 = 560.0;
    const TEXT_W: f64 = 150.0;
    const ROW_H: f64 = 26.0;
    const BAR_H: f64 = 16.0;
    const TOP: f64 = 8.0;
    const AXIS_H: f64 = 26.0;
    /// A generous average width of a 12px sans-serif character.
    const CHAR_W: f64 = 7.0;
    let (placed, total) = layout(&r.stages);
    // The axis ends on a round tick at or after the end of the last stage.
    let step = tick_step(total.max(1));
    let axis_ms = total.max(1).div_ceil(step) * step;
    let width = LABEL_W + CHART_W + TEXT_W;
    let rows = placed.len().max(1) as f64;
    let height = TOP + rows * ROW_H + AXIS_H;
    let x_of = |ms: u64| LABEL_W + ms as f64 * CHART_W / axis_ms as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"stage-timeline\" role=\"img\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         font-family=\"system-ui, sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        s,
        "<title>stage timeline of drill {} run {}: {}</title>",
        html(&r.drill),
        html(&r.run_id),
        html(&human_ms(total))
    );
    let axis_y = TOP + rows * ROW_H;
    let mut tick = 0;
    while tick <= axis_ms {
        let x = x_of(tick);
        let label = if tick == 0 {
            "0".to_string()
        } else {
            human_ms(tick)
        };
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{axis_y}\" stroke=\"#d0d7de\" \
             stroke-width=\"1\"/>\n<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" \
             fill=\"#57606a\">{}</text>",
            axis_y + 16.0,
            html(&label)
        );
        tick += step;
    }
    if placed.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"#57606a\">no stage ran</text>",
            LABEL_W + 8.0,
            TOP + ROW_H / 2.0 + 4.0
        );
    }
    for (i, (start, st)) in placed.iter().enumerate() {
        let row_y = TOP + i as f64 * ROW_H;
        let bar_y = row_y + (ROW_H - BAR_H) / 2.0;
        let text_y = row_y + ROW_H / 2.0 + 4.0;
        let x = x_of(*start);
        let skipped = st.outcome == Outcome::Skipped;
        let w = if skipped {
            8.0
        } else {
            (x_of(start + st.duration_ms) - x).max(2.0)
        };
        let label = match st.outcome {
            Outcome::Skipped => "skipped".to_string(),
            Outcome::Passed => human_ms(st.duration_ms),
            o => format!("{} {}", human_ms(st.duration_ms), o.as_str()),
        };
        let label = if st.attempts > 1 {
            format!("{label} ({} attempts)", st.attempts)
        } else {
            label
        };
        let tip = format!(
            "{}: {}, {} from +{} (limit {}, {} attempt{})",
            st.stage,
            st.outcome.as_str(),
            human_ms(st.duration_ms),
            human_ms(*start),
            human_ms(st.timeout_ms),
            st.attempts,
            if st.attempts == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            s,
            "<g class=\"stage {}\">\n<title>{}</title>\n\
             <text x=\"{}\" y=\"{text_y}\" text-anchor=\"end\" fill=\"#1f2328\">{}</text>",
            outcome_key(st.outcome),
            html(&tip),
            LABEL_W - 8.0,
            html(st.stage.as_str())
        );
        let paint = if skipped {
            format!(
                "fill=\"none\" stroke=\"{}\" stroke-dasharray=\"2 2\"",
                colour(st.outcome)
            )
        } else {
            format!("fill=\"{}\"", colour(st.outcome))
        };
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{bar_y}\" width=\"{w:.1}\" height=\"{BAR_H}\" rx=\"2\" {paint}/>"
        );
        // The label goes after the bar; inside it (in white) when it would run off the
        // picture and the bar is wide enough to hold it.
        let text_w = label.chars().count() as f64 * CHAR_W;
        let (tx, anchor, fill) = if x + w + 5.0 + text_w > width && w > text_w + 10.0 {
            (x + w - 5.0, "end", "#ffffff")
        } else {
            (x + w + 5.0, "start", "#1f2328")
        };
        let _ = writeln!(
            s,
            "<text x=\"{tx:.1}\" y=\"{text_y}\" text-anchor=\"{anchor}\" fill=\"{fill}\">{}</text>\n</g>",
            html(&label)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion::AssertionResult;
    use crate::report::Verdict;

    fn stage(stage: Stage, outcome: Outcome, ms: u64) -> StageReport {
        StageReport {
            stage,
            outcome,
            duration_ms: ms,
            timeout_ms: 60_000,
            bytes: None,
            attempts: 1,
            error: None,
            notes: vec![],
        }
    }

    fn hostile() -> RunReport {
        let at: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let nasty = "<script>alert(\"x\")</script> & 'q'\u{1}";
        RunReport {
            verdict: Verdict::Failed,
            exit_code: 1,
            failed_stage: Some(Stage::Verify),
            error: Some(ErrorReport {
                kind: crate::error::ErrorKind::Verification,
                message: format!("assertion {nasty} failed"),
                hint: Some(format!("hint {nasty}")),
                retryable: false,
                stderr_tail: Some(format!("tail {nasty}")),
            }),
            stages: vec![
                StageReport {
                    notes: vec![format!("note {nasty}")],
                    ..stage(Stage::Dump, Outcome::Passed, 1000)
                },
                stage(Stage::Encrypt, Outcome::Passed, 1500),
                stage(Stage::Upload, Outcome::Passed, 1200),
                stage(Stage::Provision, Outcome::Passed, 2000),
                stage(Stage::Restore, Outcome::Passed, 500),
                stage(Stage::Verify, Outcome::Failed, 250),
                stage(Stage::Teardown, Outcome::Passed, 100),
            ],
            dump_tool: Some(nasty.into()),
            assertions: vec![AssertionResult {
                name: nasty.into(),
                expected: ">= 1".into(),
                actual: None,
                passed: false,
                error: Some(nasty.into()),
                guard: false,
            }],
            ..RunReport::empty(nasty, nasty, at)
        }
    }

    #[test]
    fn a_failed_assertion_still_shows_the_fingerprint_matched() {
        // `hostile()` failed an assertion at verify, with no mismatch.
        let page = fingerprint(&hostile());
        assert!(page.contains("matches the dump's fingerprint"), "{page}");
        assert!(!page.contains("not compared"), "{page}");
        // A run that never got to verify did not compare.
        let mut r = hostile();
        r.assertions.clear();
        r.stages.retain(|s| s.stage != Stage::Verify);
        assert!(fingerprint(&r).contains("not compared"));
    }

    #[test]
    fn render_html_escapes_everything() {
        let page = html_page(&hostile());
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.to_lowercase().contains("<script"));
        assert!(!page.contains('\u{1}'));
        assert!(
            page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;")
        );
        assert!(!page.contains("alert(\"x\")"));
        // No external resources and no script of any kind.
        for bad in [
            "src=",
            "href=",
            "url(",
            "@import",
            "javascript:",
            "<link",
            "<img",
            "<iframe",
            "<object",
            "<embed",
            " onload=",
            " onerror=",
            " onclick=",
        ] {
            assert!(!page.contains(bad), "{bad} in page");
        }
        assert_eq!(page.matches("<svg").count(), 1);
        assert_eq!(page.matches("</svg>").count(), 1);
    }

    #[test]
    fn render_timeline_ticks_are_round() {
        assert_eq!(tick_step(1), 1);
        assert_eq!(tick_step(4350), 1000);
        assert_eq!(tick_step(123_000), 30_000);
        assert_eq!(tick_step(1_000), 200);
        assert_eq!(tick_step(10 * 3_600_000), 7_200_000);
        assert_eq!(tick_step(100 * 3_600_000), 72_000_000);
    }

    #[test]
    fn render_timeline_overlaps_the_pipeline() {
        let r = hostile();
        let (placed, total) = layout(&r.stages);
        let starts: Vec<u64> = placed.iter().map(|(s, _)| *s).collect();
        // dump/encrypt/upload together; provision after the longest (1500ms) of them.
        assert_eq!(starts, vec![0, 0, 0, 1500, 3500, 4000, 4250]);
        assert_eq!(total, 4350);
        let svg = stage_timeline_svg(&r);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(svg.matches("<g class=\"stage ").count(), 7);
        assert!(svg.contains("fill=\"#c62828\""), "the failed verify is red");
        assert!(svg.contains(">250ms failed</text>"));
        // Round ticks: 0, 1s, 2s, 3s, 4s, 5s (the axis ends on a tick after 4.35s).
        assert_eq!(svg.matches("<line ").count(), 6);
        assert!(svg.contains(">5.0s</text>"));
        assert!(!svg.contains('\u{1}'));
        assert!(!svg.contains("<script"));

        // Drilling a stored artifact: no pipeline, skipped stages are markers.
        let at: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let r = RunReport {
            stages: vec![
                stage(Stage::Provision, Outcome::TimedOut, 3000),
                stage(Stage::Restore, Outcome::Skipped, 0),
                stage(Stage::Teardown, Outcome::Passed, 100),
            ],
            ..RunReport::empty("d", "r", at)
        };
        let (placed, total) = layout(&r.stages);
        assert_eq!(
            placed.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![0, 3000, 3000]
        );
        assert_eq!(total, 3100);
        let svg = stage_timeline_svg(&r);
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains(">skipped</text>"));
        // Nothing ran: still a valid picture.
        let svg = stage_timeline_svg(&RunReport::empty("d", "r", at));
        assert!(svg.contains("no stage ran") && svg.ends_with("</svg>\n"));
    }
}
