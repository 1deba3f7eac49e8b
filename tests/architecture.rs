//! The library's import graph has no circles: no module imports another that imports it
//! back, directly or around a circle. Walks every file of the library (`src/`, but for
//! the binary's `main.rs` and `cli/`), follows its `crate::` and `super::` paths to the
//! module they name, and looks for a cycle. A module's own submodules are its inside (a
//! `mod.rs` re-exporting its children's types is not an import); test modules and
//! comments (intra-doc links) are not imports either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path, e.g. `["engine", "kind"]`; the crate root is empty.
type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code without comments, string literals' contents, and `#[cfg(test)]` modules.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i..].starts_with(b"r#\"") || b[i..].starts_with(b"r##\"") {
            let hashes = if b[i + 1..].starts_with(b"##") { 2 } else { 1 };
            let end = format!("\"{}", "#".repeat(hashes));
            i += 2 + hashes;
            while i < b.len() && !b[i..].starts_with(end.as_bytes()) {
                i += 1;
            }
            i += end.len();
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    // Test modules: `#[cfg(test)] mod x { … }` (balanced braces) and `#[cfg(test)] mod x;`.
    let mut s = out;
    while let Some(at) = s.find("#[cfg(test)]") {
        let rest = &s[at..];
        let Some(open) = rest.find(['{', ';']) else {
            break;
        };
        let end = if rest.as_bytes()[open] == b';' {
            at + open + 1
        } else {
            let mut depth = 0;
            let mut j = at + open;
            loop {
                match s.as_bytes()[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        };
        s.replace_range(at..end, "");
    }
    s
}

/// Every path the code names from `crate::` or `super::`, as segments; `use` trees with
/// braces are expanded.
fn paths(code: &str, here: &Module) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for (start, anchor) in code
        .match_indices("crate::")
        .map(|(i, _)| (i, "crate::"))
        .chain(code.match_indices("super::").map(|(i, _)| (i, "super::")))
    {
        // Only where a path begins (`super::super::` counts once, from its first).
        let before = code[..start].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut base: Vec<String> = if anchor == "crate::" {
            Vec::new()
        } else {
            let mut b = here.clone();
            b.pop();
            b
        };
        let mut i = start + anchor.len();
        while code[i..].starts_with("super::") {
            base.pop();
            i += "super::".len();
        }
        expand(&code[i..], base, &mut out, bytes.len());
    }
    out
}

/// Reads a path (or a brace tree) at the start of `s`, below `base`.
fn expand(s: &str, base: Vec<String>, out: &mut Vec<Vec<String>>, _limit: usize) {
    if let Some(rest) = s.strip_prefix('{') {
        // `{a::b, c, d::{e, f}}`: split at top-level commas up to the matching brace.
        let mut depth = 1;
        let mut item = String::new();
        for c in rest.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 || (depth == 1 && c == ',') {
                let t = item.trim().to_string();
                if !t.is_empty() && t != "self" {
                    expand(&t, base.clone(), out, 0);
                } else if t == "self" {
                    out.push(base.clone());
                }
                item.clear();
                if depth == 0 {
                    break;
                }
                continue;
            }
            item.push(c);
        }
        return;
    }
    let mut segs = base;
    let mut rest = s;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segs.push(rest[..end].to_string());
        rest = &rest[end..];
        match rest.strip_prefix("::") {
            Some(r) if r.starts_with('{') => {
                expand(r, segs.clone(), out, 0);
                return;
            }
            Some(r) => rest = r,
            None => break,
        }
    }
    out.push(segs);
}

/// The longest prefix of `path` that is a module.
fn resolve(path: &[String], modules: &BTreeSet<Module>) -> Module {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains(m))
        .unwrap_or_default()
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // The binary's files are another crate: `crate::` there is the binary.
    files.retain(|f| {
        let rel = f.strip_prefix(&src).unwrap();
        rel != Path::new("main.rs") && !rel.starts_with("cli")
    });
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut g: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for f in &files {
        let me = module_of(&src, f);
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        let edges = g.entry(me.clone()).or_default();
        for p in paths(&code, &me) {
            let target = resolve(&p, &modules);
            // The root, itself, and its own submodules are no imports.
            if target.is_empty() || target.starts_with(&me) {
                continue;
            }
            edges.insert(target);
        }
    }
    g
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// A cycle in `g`, if there is one, as the modules around it.
fn find_cycle(g: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        m: &Module,
        g: &BTreeMap<Module, BTreeSet<Module>>,
        marks: &mut BTreeMap<Module, Mark>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        match marks.get(m) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let at = stack.iter().position(|s| s == m).unwrap();
                let mut c = stack[at..].to_vec();
                c.push(m.clone());
                return Some(c);
            }
            None => {}
        }
        marks.insert(m.clone(), Mark::Open);
        stack.push(m.clone());
        for n in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(n, g, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(m.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for m in g.keys() {
        if let Some(c) = visit(m, g, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = graph();
    assert!(
        g.len() > 30,
        "read {} modules: the walk lost its way",
        g.len()
    );
    if let Some(cycle) = find_cycle(&g) {
        let names: Vec<String> = cycle.iter().map(name).collect();
        panic!(
            "import circle: {}\n(each imports the next; move the shared vocabulary to a leaf module)",
            names.join(" -> ")
        );
    }
}

#[test]
fn the_walk_sees_imports_and_circles() {
    // The checker must not pass by seeing nothing: known edges are found…
    let g = graph();
    let has = |from: &str, to: &str| {
        let f: Module = from.split("::").map(String::from).collect();
        let t: Module = to.split("::").map(String::from).collect();
        g.get(&f).is_some_and(|e| e.contains(&t))
    };
    assert!(has("drill::acquire", "artifact::pipeline"));
    assert!(has("daemon::api", "daemon::auth"));
    assert!(has("config::validate", "engine::kind"));
    assert!(!has("stage", "drill"), "an intra-doc link is not an import");
    // …and a circle is reported.
    let mut g2 = g.clone();
    g2.entry(vec!["status".into()])
        .or_default()
        .insert(vec!["runner".into()]);
    let c = find_cycle(&g2).expect("status -> runner -> … -> status is a circle");
    assert!(c.contains(&vec!["status".to_string()]), "{c:?}");
    // Brace trees and `super::` resolve.
    let here: Module = vec!["daemon".into(), "api".into()];
    let ps = paths(
        "use super::{auth::bearer_auth, Daemon}; use crate::{status::{RunStatus, Stage}, error};",
        &here,
    );
    assert!(
        ps.contains(&vec!["daemon".into(), "auth".into(), "bearer_auth".into()]),
        "{ps:?}"
    );
    assert!(
        ps.contains(&vec!["status".into(), "Stage".into()]),
        "{ps:?}"
    );
    assert!(ps.contains(&vec!["error".into()]), "{ps:?}");
}
