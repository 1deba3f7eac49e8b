//! What the commands write to people: logs on stderr that do not tear the live stage
//! display of `run` (and never show a secret), that display itself, tables, ages, and
//! generated output that survives a closed pipe.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use firedrill::human::human_ms;
use firedrill::report::{render_stage_line_in, Colour, StageReport};
use firedrill::{Progress, Stage};
use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};

use super::LogFormat;

/// `println!` on stdout that survives a closed pipe (see [`write_to`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_to(
            $crate::cli::output::Stream::Out,
            format_args!("{}\n", format_args!($($arg)*)),
        )
    };
}

/// `print!` on stdout that survives a closed pipe (see [`write_to`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_to($crate::cli::output::Stream::Out, format_args!($($arg)*))
    };
}

/// `eprintln!` that survives a closed pipe and does not tear the live display (see
/// [`write_to`]).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_to(
            $crate::cli::output::Stream::Err,
            format_args!("{}\n", format_args!($($arg)*)),
        )
    };
}

/// Logs go to stderr (through [`LogWriter`], so they do not tear the live stage display);
/// FIREDRILL_LOG picks which.
pub(super) fn init_logs(format: LogFormat) {
    let filter = match std::env::var("FIREDRILL_LOG") {
        Err(_) => tracing_subscriber::EnvFilter::new("warn"),
        Ok(v) => tracing_subscriber::EnvFilter::try_new(&v).unwrap_or_else(|e| {
            errln!("warning: FIREDRILL_LOG={v} is not a log filter ({e}); using `warn`");
            tracing_subscriber::EnvFilter::new("warn")
        }),
    };
    // OpenDAL's request signer (reqsign) logs its credential providers with `Debug`, keys
    // and all, at debug level: never below info, whatever FIREDRILL_LOG says. LogWriter
    // also scrubs every secret firedrill holds from whatever else gets through.
    let filter = filter.add_directive("reqsign_core=info".parse().expect("a log directive"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter(Vec::new()));
    match format {
        LogFormat::Human => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// The live stage display of `run`, when there is one: log lines and messages are written
/// above it rather than through it.
static LIVE: OnceLock<MultiProgress> = OnceLock::new();

/// One log event, written to stderr in one piece when dropped.
struct LogWriter(Vec<u8>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let text = firedrill::secret::scrub(&text);
        let write = || {
            let _ = std::io::stderr().write_all(text.as_bytes());
        };
        match LIVE.get() {
            Some(live) => live.suspend(write),
            None => write(),
        }
    }
}

/// Which of the two streams a command writes to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Out,
    Err,
}

/// Set once a stream's reader is gone (`| head`, a closed terminal): what would follow is
/// dropped without another try.
static CLOSED: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Writes to stdout or stderr and never panics (`println!` does, on EPIPE): a reader that
/// went away must not stop a drill half-way, with its sandbox up and its run unrecorded.
/// What cannot be written is dropped; the command goes on and exits as it would have.
/// Messages on stderr do not tear the live display. Used through [`outln!`], [`out!`],
/// [`errln!`].
pub(super) fn write_to(stream: Stream, args: std::fmt::Arguments<'_>) {
    let closed = &CLOSED[stream as usize];
    if closed.load(Ordering::Relaxed) {
        return;
    }
    let write = || {
        let written = match stream {
            Stream::Out => {
                let mut out = std::io::stdout().lock();
                out.write_fmt(args).and_then(|()| out.flush())
            }
            Stream::Err => std::io::stderr().lock().write_fmt(args),
        };
        if written.is_err() {
            // EPIPE, or a terminal gone (EIO): nobody reads this stream any more.
            closed.store(true, Ordering::Relaxed);
        }
    };
    match (stream, LIVE.get()) {
        (Stream::Err, Some(live)) => live.suspend(write),
        _ => write(),
    }
}

/// Whether `stream` is a terminal that can draw: `TERM=dumb` (Emacs shells, some CI
/// consoles) is one that cannot move the cursor, where the live display would hide every
/// line it holds.
pub(super) fn drawable(stream: Stream) -> bool {
    let tty = match stream {
        Stream::Out => std::io::stdout().is_terminal(),
        Stream::Err => std::io::stderr().is_terminal(),
    };
    tty && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Colour for what goes to `stream`: on a terminal only, and never with `NO_COLOR` set
/// (<https://no-color.org>).
pub(super) fn colour_for(stream: Stream) -> Colour {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if drawable(stream) && !no_color {
        Colour::Ansi
    } else {
        Colour::Off
    }
}

/// A message on stderr that does not tear the live display.
pub(super) fn say(message: &str) {
    errln!("{message}");
}

/// Writes generated output to stdout; a closed pipe (`| head`) is not an error.
pub(super) fn emit(bytes: &[u8], what: &str) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            errln!("error: cannot write {what}: {e}");
            2
        }
    }
}

/// How long ago `t` was, in one short unit: `45s`, `12m`, `5h`, `3d`.
pub(super) fn age_of(t: jiff::Timestamp) -> String {
    let secs = jiff::Timestamp::now().as_second() - t.as_second();
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Columns padded to their widest cell; the last column is not padded.
pub(super) fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How `run` shows its stages on stderr. An attempt that failed and will be retried gets
/// a line of its own as it fails (unless quiet): a run that takes twice as long says why.
pub(super) enum Printer {
    /// Nothing while it runs (`--quiet`).
    Quiet,
    /// A line per stage as it finishes: stderr is not a terminal (or a dumb one).
    Lines(Colour),
    /// A spinner with the elapsed time per running stage, replaced by its line when it
    /// finishes.
    Live {
        bars: MultiProgress,
        running: Mutex<HashMap<Stage, ProgressBar>>,
        colour: Colour,
    },
}

impl Printer {
    pub(super) fn new(quiet: bool) -> Printer {
        if quiet {
            Printer::Quiet
        } else if drawable(Stream::Err) {
            let bars = MultiProgress::new();
            let _ = LIVE.set(bars.clone());
            Printer::Live {
                bars,
                running: Mutex::new(HashMap::new()),
                colour: colour_for(Stream::Err),
            }
        } else {
            Printer::Lines(colour_for(Stream::Err))
        }
    }

    /// A style with firedrill's own elapsed time (`{elapsed_ms}`) and spinner.
    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .with_key(
                "elapsed_ms",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&human_ms(state.elapsed().as_millis() as u64));
                },
            )
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
    }

    /// The running line lines up with [`firedrill::report::render_stage_line`]: stage, outcome, duration.
    fn spinner_style() -> ProgressStyle {
        Self::style("  {prefix:<10} {spinner:.cyan} running {elapsed_ms:>8}")
    }

    /// A stage that moves bytes: how many so far and the rate; a bar when the total is
    /// known (the restore).
    fn bytes_style(total: bool) -> ProgressStyle {
        let template = if total {
            "  {prefix:<10} {spinner:.cyan} {elapsed_ms:>8}  [{bar:24}] {bytes}/{total_bytes}  {bytes_per_sec}"
        } else {
            "  {prefix:<10} {spinner:.cyan} {elapsed_ms:>8}  {bytes}  {bytes_per_sec}"
        };
        Self::style(template).progress_chars("=> ")
    }
}

impl Progress for Printer {
    fn stage_started(&self, stage: Stage) {
        tracing::info!("stage {stage} started");
        if let Printer::Live { bars, running, .. } = self {
            let bar = bars.add(
                ProgressBar::new_spinner()
                    .with_style(Printer::spinner_style())
                    .with_prefix(stage.as_str()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(old) = running.insert(stage, bar) {
                old.finish_and_clear();
            }
        }
    }

    fn bytes(&self, stage: Stage, done: u64, total: Option<u64>) {
        if let Printer::Live { running, .. } = self {
            let running = running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(bar) = running.get(&stage) {
                if bar.length().is_none() || bar.length() != total {
                    bar.set_style(Printer::bytes_style(total.is_some()));
                    if let Some(t) = total {
                        bar.set_length(t);
                    }
                }
                bar.set_position(done);
            }
        }
    }

    fn stage_finished(&self, r: &StageReport) {
        match self {
            Printer::Quiet => {}
            Printer::Lines(colour) => errln!("{}", render_stage_line_in(r, *colour)),
            Printer::Live {
                bars,
                running,
                colour,
            } => {
                let bar = running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&r.stage);
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                    bars.remove(&bar);
                }
                let _ = bars.println(render_stage_line_in(r, *colour));
            }
        }
    }

    fn stage_retrying(
        &self,
        stage: Stage,
        attempt: u32,
        error: &firedrill::Error,
        backoff: Duration,
    ) {
        if let Printer::Live { bars, running, .. } = self {
            // The next attempt starts the stage again, with a spinner (and clock) of its own.
            let bar = running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&stage);
            if let Some(bar) = bar {
                bar.finish_and_clear();
                bars.remove(&bar);
            }
        }
        if !matches!(self, Printer::Quiet) {
            say(&retry_line(stage, attempt, error, backoff));
        }
    }
}

/// A failed attempt, aligned with [`firedrill::report::render_stage_line`]: `  restore    attempt 1 failed
/// (infrastructure), retrying in 2.0s: <what went wrong>`.
fn retry_line(stage: Stage, attempt: u32, error: &firedrill::Error, backoff: Duration) -> String {
    format!(
        "  {:<10} attempt {attempt} failed ({}), retrying in {}: {}",
        stage.as_str(),
        error.kind.as_str(),
        human_ms(backoff.as_millis() as u64),
        error.headline()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_is_one_line_under_the_stage_column() {
        let e = firedrill::Error::infra("the container exited").context("container fd-1");
        assert_eq!(
            retry_line(Stage::Restore, 1, &e, Duration::from_secs(2)),
            "  restore    attempt 1 failed (infrastructure), retrying in 2.0s: container fd-1: the container exited"
        );
    }
}
