//! Reports for people and CI systems, rendered from a [`crate::report::RunReport`]:
//! JUnit XML (Jenkins, GitLab) and a self-contained HTML page.
//!
//! Both renderers escape every string they interpolate: drill names, assertion names,
//! error messages and tool output come from configuration files and from the tools a
//! drill ran, so they may hold markup, quotes or control characters.

pub mod chart;
pub mod html;
pub mod junit;

pub use html::{html_page, stage_timeline_svg};
pub use junit::{junit_xml, junit_xml_on_host};

use crate::report::{ErrorReport, Outcome, RunReport, StageReport};
use crate::status::RunStatus;

/// Whether XML 1.0 allows this character at all (escaped or not): `#x9 | #xA | #xD |
/// [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`. Surrogates cannot occur in a
/// Rust string, so what remains to refuse is the C0 controls and U+FFFE, U+FFFF.
fn xml_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= '\u{20}' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Escapes text for XML element content; characters XML 1.0 forbids are dropped, and a
/// carriage return is kept as a reference so that parsers do not normalise it away.
pub(crate) fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|&c| xml_allowed(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a double-quoted XML attribute value; tabs and line breaks are kept
/// as references (a parser turns literal ones into spaces).
pub(crate) fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|&c| xml_allowed(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML (element content and quoted attribute values alike). Control
/// characters other than tab, line feed and carriage return, and noncharacters, are
/// dropped: HTML calls them parse errors and XML (inline SVG) refuses most of them.
pub(crate) fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            '\u{FDD0}'..='\u{FDEF}' => {}
            c if (c as u32) & 0xFFFE == 0xFFFE => {}
            c => out.push(c),
        }
    }
    out
}

/// The run's status in capitals, for badges: PASSED, FAILED, ERROR, INTERRUPTED, …
pub(crate) fn status_label(r: &RunReport) -> String {
    r.status().as_str().to_uppercase()
}

/// One sentence saying what the verdict means, as the terminal report says it.
pub(crate) fn verdict_sentence(r: &RunReport) -> String {
    let at = r
        .failed_stage
        .map(|s| format!(" (stage {s})"))
        .unwrap_or_default();
    match r.status() {
        RunStatus::Passed => "the backup restored and matches the source".to_string(),
        RunStatus::Failed => format!("the backup did not survive the drill{at}"),
        RunStatus::Cancelled => {
            format!("an operator stopped the drill{at}; the backup is unproven")
        }
        RunStatus::Interrupted => {
            format!("firedrill shut down during the drill{at}; the backup is unproven")
        }
        RunStatus::Lost => {
            format!("the drill was lost with its process{at}; the backup is unproven")
        }
        _ => format!("the drill could not run{at}"),
    }
}

/// Milliseconds as seconds with exactly three decimals (`3.200`), without floating point.
pub(crate) fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The wall-clock length of the run in milliseconds (zero if the clock went backwards).
pub(crate) fn run_ms(r: &RunReport) -> u64 {
    let d = r.finished_at.as_millisecond() - r.started_at.as_millisecond();
    u64::try_from(d).unwrap_or(0)
}

/// The error that belongs to a stage: its own, or the run's when this stage stopped the
/// run and the error was recorded only at the report's level.
pub(crate) fn stage_error<'a>(r: &'a RunReport, s: &'a StageReport) -> Option<&'a ErrorReport> {
    s.error.as_ref().or_else(|| {
        let stopped = matches!(
            s.outcome,
            Outcome::Failed | Outcome::TimedOut | Outcome::Cancelled | Outcome::Interrupted
        );
        if stopped && r.failed_stage == Some(s.stage) {
            r.error.as_ref()
        } else {
            None
        }
    })
}

/// CSS class / colour key of a stage outcome.
pub(crate) fn outcome_key(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::TimedOut => "timed-out",
        Outcome::Cancelled => "cancelled",
        Outcome::Interrupted => "interrupted",
        Outcome::Stopped => "stopped",
        Outcome::Skipped => "skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping_strips_what_xml_forbids() {
        assert_eq!(
            xml_text("a<b>&c\u{1}\u{8}\u{B}\u{C}\u{FFFE}\u{FFFF}\r\n\td\"'"),
            "a&lt;b&gt;&amp;c&#13;\n\td\"'"
        );
        assert_eq!(
            xml_attr("x=\"1\" & y='2'\n<\u{0}>\t"),
            "x=&quot;1&quot; &amp; y=&apos;2&apos;&#10;&lt;&gt;&#9;"
        );
        // Everything outside the forbidden set survives, astral planes included.
        assert_eq!(xml_text("é ✓ 𝄞 \u{7F}"), "é ✓ 𝄞 \u{7F}");
    }

    #[test]
    fn html_escaping_strips_controls() {
        assert_eq!(
            html("<script>alert('x')</script> & \"q\"\u{1}\u{7F}\u{9B}\u{FDD0}\u{1FFFE}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(html("line\nnext\tcol é"), "line\nnext\tcol é");
    }

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(3200), "3.200");
        assert_eq!(seconds(123_456_789), "123456.789");
    }
}
