//! Environment variables in config files: `${VAR}`, `${VAR:-default}`, `${VAR:?message}`.
//!
//! The same drill file should serve staging and production, a container image and a laptop,
//! so hosts, buckets and names can come from the environment. Interpolation happens on the
//! text, before TOML parsing, so a variable can stand for any value (`port = ${PGPORT:-5432}`)
//! and the parser still reports errors against the file as written.
//!
//! Every problem is reported at once, each with the file, the line and the variable, as
//! vector's `src/config/vars.rs` does: fixing one missing variable only to meet the next is
//! the worst way to bring up a config.
//!
//! `${}` is for values that are not secret. A secret interpolated here would become part of
//! the parsed config, which is printed, stored and logged in places that never expect a
//! secret; secrets keep their own form, `{ env = "VAR" }` or `{ file = "/path" }`, which is
//! read only when a drill runs and held in a redacting type. Nothing here refuses a
//! variable, so this is a rule of use, written in the README.
//!
//! The forms, as in the shell:
//! - `${VAR}`: the value; an error when `VAR` is not set (set but empty gives "").
//! - `${VAR:-default}`: `default` when `VAR` is unset or empty; `${VAR-default}` only when
//!   unset.
//! - `${VAR:?message}`: an error saying `message` when `VAR` is unset or empty;
//!   `${VAR?message}` only when unset.
//! - `$${`: a literal `${`. Any other `$` is kept as it is: `$1` and PostgreSQL's `$$`
//!   dollar quoting in assertion SQL stay as written.
//! - A `$` followed by anything else is kept as it is (`$1` in SQL stays `$1`).
//!
//! Comments are left alone, so a commented-out line may name a variable that is not set.
//! Values are inserted as they are: a value with a `"` inside a `"…"` string breaks the
//! TOML, and the parser then says where.

use std::path::Path;

use super::{Problem, Problems};

/// One thing wrong with the variables of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    /// 1-based line of the reference.
    pub line: usize,
    /// The dotted key the reference is in (`source.host`), when the line names one.
    pub key: Option<String>,
    pub message: String,
    pub fix: String,
}

/// Expands the variables in `text` with the process environment; each problem names
/// `file`, its line and key, and the variable.
pub fn interpolate_env(file: &Path, text: &str) -> Result<String, Problems> {
    interpolate(text, |name| std::env::var(name).ok()).map_err(|errors| {
        Problems(
            errors
                .into_iter()
                .map(|e| Problem {
                    file: file.to_path_buf(),
                    field: e.key.unwrap_or_default(),
                    line: Some(e.line),
                    message: e.message,
                    fix: e.fix,
                })
                .collect(),
        )
    })
}

/// Expands the variables in `text`, looking each up with `lookup`. Returns every problem,
/// in the order they appear, or the expanded text.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<InterpolationError>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut mode = Mode::Normal;
    let mut line = 1;
    let mut line_start = 0;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().expect("i is on a char boundary");
        if c == '\n' {
            line += 1;
            line_start = i + 1;
            if matches!(mode, Mode::Comment | Mode::Basic | Mode::Literal) {
                mode = Mode::Normal;
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == '$' && mode != Mode::Comment {
            let (consumed, expanded) = dollar(rest, &lookup);
            match expanded {
                Ok(v) => out.push_str(&v),
                Err((message, fix)) => {
                    errors.push(InterpolationError {
                        line,
                        key: key_of_line(text, line_start),
                        message,
                        fix,
                    });
                    out.push_str(&rest[..consumed]);
                }
            }
            i += consumed;
            continue;
        }
        // Track strings and comments: a `#` inside a string is not a comment, and a quote
        // inside a comment opens nothing.
        let step = match mode {
            Mode::Normal => {
                if c == '#' {
                    mode = Mode::Comment;
                    1
                } else if rest.starts_with("\"\"\"") {
                    mode = Mode::MultiBasic;
                    3
                } else if rest.starts_with("'''") {
                    mode = Mode::MultiLiteral;
                    3
                } else if c == '"' {
                    mode = Mode::Basic;
                    1
                } else if c == '\'' {
                    mode = Mode::Literal;
                    1
                } else {
                    c.len_utf8()
                }
            }
            Mode::Comment => c.len_utf8(),
            Mode::Basic | Mode::MultiBasic if c == '\\' => {
                // An escape: the next character (a quote, a backslash) is content; a
                // line-ending backslash leaves the newline to be counted.
                1 + rest[1..]
                    .chars()
                    .next()
                    .filter(|&n| n != '\n')
                    .map_or(0, char::len_utf8)
            }
            Mode::Basic if c == '"' => {
                mode = Mode::Normal;
                1
            }
            Mode::Literal if c == '\'' => {
                mode = Mode::Normal;
                1
            }
            Mode::MultiBasic | Mode::MultiLiteral => {
                let quote = if mode == Mode::MultiBasic { '"' } else { '\'' };
                let run = rest.chars().take_while(|&q| q == quote).count();
                if run >= 3 {
                    // Up to two quotes before the closing three belong to the string.
                    mode = Mode::Normal;
                    run.min(5)
                } else {
                    run.max(c.len_utf8())
                }
            }
            Mode::Basic | Mode::Literal => c.len_utf8(),
        };
        // A `\` at the very end of the text would ask for one byte past it.
        let step = step.min(rest.len());
        out.push_str(&rest[..step]);
        i += step;
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    Comment,
    Basic,
    Literal,
    MultiBasic,
    MultiLiteral,
}

const FORMS: &str = "write ${VAR}, ${VAR:-default} or ${VAR:?message}; a literal ${ is written $${";

/// Expands the `$…` at the start of `rest`: how many bytes it spans, and its value or
/// (message, fix).
fn dollar(
    rest: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> (usize, Result<String, (String, String)>) {
    if rest.starts_with("$${") {
        return (3, Ok("${".into()));
    }
    if !rest.starts_with("${") {
        return (1, Ok("$".into()));
    }
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let Some(close) = rest[..line_end].find('}') else {
        return (
            2,
            Err((
                "`${` is not closed by a `}` on the same line".into(),
                FORMS.into(),
            )),
        );
    };
    let reference = &rest[..=close];
    let inner = &rest[2..close];
    let name_len = inner
        .char_indices()
        .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(inner.len(), |(i, _)| i);
    let (name, op) = inner.split_at(name_len);
    if name.is_empty() {
        return (
            close + 1,
            Err((
                format!("`{reference}` does not name a variable"),
                format!(
                    "variable names are letters, digits and _, not starting with a digit; {FORMS}"
                ),
            )),
        );
    }
    let value = lookup(name);
    let set_and_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let export = format!("export {name}=… before running firedrill");
    let result = if op.is_empty() {
        value.ok_or_else(|| {
            (
                format!("environment variable `{name}` is not set (`{reference}`)"),
                format!("{export}, or give a default: ${{{name}:-value}}"),
            )
        })
    } else if let Some(default) = op.strip_prefix(":-") {
        Ok(if set_and_nonempty {
            value.unwrap_or_default()
        } else {
            default.to_string()
        })
    } else if let Some(default) = op.strip_prefix('-') {
        Ok(value.unwrap_or_else(|| default.to_string()))
    } else if let Some(message) = op.strip_prefix(":?") {
        if set_and_nonempty {
            Ok(value.unwrap_or_default())
        } else {
            Err((required(name, value.is_some(), message), export))
        }
    } else if let Some(message) = op.strip_prefix('?') {
        value.ok_or_else(|| (required(name, false, message), export))
    } else {
        Err((
            format!("`{reference}` is not a variable reference"),
            format!("after the name comes `}}`, `:-`, `-`, `:?` or `?`; {FORMS}"),
        ))
    };
    (close + 1, result)
}

fn required(name: &str, set: bool, message: &str) -> String {
    let state = if set { "is empty" } else { "is not set" };
    if message.is_empty() {
        format!("environment variable `{name}` {state}")
    } else {
        format!("environment variable `{name}` {state}: {message}")
    }
}

/// The dotted key of the line starting at `line_start` (`source.host`), if it has one.
fn key_of_line(text: &str, line_start: usize) -> Option<String> {
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn expands_every_form() {
        let vars = env(&[("HOST", "db.internal"), ("EMPTY", ""), ("PORT", "6432")]);
        let text = "host = \"${HOST}\"\nport = ${PORT:-5432}\nuser = \"${USER_X:-backup}\"\n\
                    a = \"${EMPTY:-fallback}\"\nb = \"${EMPTY-kept}\"\nc = \"${HOST:?need a host}\"\n\
                    d = \"${UNSET_X-dash}\"\n";
        assert_eq!(
            interpolate(text, vars).unwrap(),
            "host = \"db.internal\"\nport = 6432\nuser = \"backup\"\n\
             a = \"fallback\"\nb = \"\"\nc = \"db.internal\"\nd = \"dash\"\n"
        );
    }

    #[test]
    fn dollars_escape_and_stand_alone() {
        let text = "sql = \"select $1, 'a$b' from t where x = $$q$$\"\nprice = \"$5 and ${A}\"\n";
        assert_eq!(
            interpolate(text, env(&[("A", "x")])).unwrap(),
            "sql = \"select $1, 'a$b' from t where x = $$q$$\"\nprice = \"$5 and x\"\n"
        );
        // `$${A}` is a literal `${A}`.
        assert_eq!(
            interpolate("x = \"$${A}\"", env(&[])).unwrap(),
            "x = \"${A}\""
        );
    }

    #[test]
    fn reports_every_missing_variable_with_line_key_and_fix() {
        let text =
            "name = \"x\"\n[source]\nhost = \"${PGHOST}\"\nuser = \"${PGUSER:?the backup user}\"\n\
                    [storage]\nbucket = \"${BUCKET}\"\n";
        let errors = interpolate(text, env(&[])).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(errors[0].line, 3);
        assert_eq!(errors[0].key.as_deref(), Some("source.host"));
        assert_eq!(
            errors[0].message,
            "environment variable `PGHOST` is not set (`${PGHOST}`)"
        );
        assert_eq!(
            errors[0].fix,
            "export PGHOST=… before running firedrill, or give a default: ${PGHOST:-value}"
        );
        assert_eq!(errors[1].line, 4);
        assert_eq!(
            errors[1].message,
            "environment variable `PGUSER` is not set: the backup user"
        );
        assert_eq!(errors[2].key.as_deref(), Some("storage.bucket"));
    }

    #[test]
    fn required_rejects_empty_but_the_question_mark_alone_does_not() {
        let vars = env(&[("E", "")]);
        let e = interpolate("a = \"${E:?say it}\"", &vars).unwrap_err();
        assert_eq!(e[0].message, "environment variable `E` is empty: say it");
        assert_eq!(
            interpolate("a = \"${E?say it}\"", &vars).unwrap(),
            "a = \"\""
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        let e = interpolate(
            "a = \"${}\"\nb = \"${1X}\"\nc = \"${X:=y}\"\nd = \"${X\"\n",
            env(&[]),
        )
        .unwrap_err();
        let messages: Vec<&str> = e.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`${}` does not name a variable",
                "`${1X}` does not name a variable",
                "`${X:=y}` is not a variable reference",
                "`${` is not closed by a `}` on the same line",
            ]
        );
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }

    #[test]
    fn comments_are_left_alone_but_strings_with_hashes_are_not_comments() {
        let text = "# host = \"${UNSET_IN_COMMENT}\"\na = \"#${A}\" # ${ALSO_UNSET}\n\
                    b = '#${A}'\nc = \"\\\"#${A}\"\n";
        assert_eq!(
            interpolate(text, env(&[("A", "v")])).unwrap(),
            "# host = \"${UNSET_IN_COMMENT}\"\na = \"#v\" # ${ALSO_UNSET}\n\
             b = '#v'\nc = \"\\\"#v\"\n"
        );
    }

    #[test]
    fn multi_line_strings_are_strings() {
        let text = "sql = \"\"\"\nselect 1 # not a comment ${A}\n\"\"\"\n# ${UNSET}\n\
                    q = '''\n'#' ${A}\n'''\n";
        assert_eq!(
            interpolate(text, env(&[("A", "v")])).unwrap(),
            "sql = \"\"\"\nselect 1 # not a comment v\n\"\"\"\n# ${UNSET}\n\
             q = '''\n'#' v\n'''\n"
        );
    }

    #[test]
    fn quotes_in_comments_open_nothing_and_line_ends_keep_count() {
        // An apostrophe in a comment, and a line-ending backslash in a multi-line string.
        let text =
            "# don't ${X}\na = \"${A}\"\nb = \"\"\"one \\\n  two\"\"\"\nc = \"${MISSING_X}\"\n";
        let e = interpolate(text, env(&[("A", "v")])).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].line, e[0].key.as_deref()), (5, Some("c")));
    }

    #[test]
    fn text_without_references_is_unchanged() {
        let text = "name = \"ünïcode\" # ok\n[a]\nb = [1, 2]\nc = \"\\\\\"\nd = \"tail\\";
        assert_eq!(interpolate(text, env(&[])).unwrap(), text);
    }

    #[test]
    fn problems_name_the_file() {
        let p = interpolate_env(
            Path::new("drills/x.toml"),
            "[source]\nhost = \"${FIREDRILL_TEST_SURELY_UNSET_HOST}\"\n",
        )
        .unwrap_err();
        assert_eq!(
            p.to_string(),
            "drills/x.toml: source.host (line 2): environment variable `FIREDRILL_TEST_SURELY_UNSET_HOST` is not set (`${FIREDRILL_TEST_SURELY_UNSET_HOST}`)\n  \
             fix: export FIREDRILL_TEST_SURELY_UNSET_HOST=… before running firedrill, or give a default: ${FIREDRILL_TEST_SURELY_UNSET_HOST:-value}"
        );
    }
}
