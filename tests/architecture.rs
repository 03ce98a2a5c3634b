//! The crate's rooms, checked: data flows one way (`bytes → ingest → buffer → pipeline →
//! signals → exporter`, with admin, poller and app on top and the vocabulary modules at the
//! bottom), no module imports against that flow, and no two files of one folder import each
//! other. Read from the sources, so a new `use` that breaks the layout fails here with the
//! file and line named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the modules on top (admin, app) may name: every component below them.
const TOP: &[&str] = &[
    "ingest",
    "buffer",
    "pipeline",
    "signals",
    "deadletter",
    "exporter",
    "poller",
    "mist",
    "secret",
    "config",
    "telemetry",
    "clock",
];

/// What each top-level module may name besides itself. The vocabulary modules (config, secret,
/// clock, telemetry) import nothing above them.
const ALLOWED: &[(&str, &[&str])] = &[
    ("secret", &[]),
    ("clock", &[]),
    ("config", &["secret"]),
    ("telemetry", &["config", "clock"]),
    ("mist", &["secret", "config", "telemetry", "clock"]),
    ("ingest", &["buffer", "mist", "secret", "config", "telemetry", "clock"]),
    ("buffer", &["config", "telemetry", "clock"]),
    ("signals", &["mist", "config", "telemetry", "clock"]),
    ("exporter", &["secret", "config", "telemetry", "clock"]),
    ("deadletter", &["exporter", "config", "telemetry", "clock"]),
    ("pipeline", &["buffer", "signals", "exporter", "deadletter", "mist", "config", "telemetry", "clock"]),
    ("poller", &["pipeline", "signals", "mist", "secret", "config", "telemetry", "clock"]),
    // Admin sits on top of every component; app wires admin too (see `may_import`).
    ("admin", TOP),
    ("app", TOP),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source text without comments' content (a `crate::x` in a doc link is not an import).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("")))
        .filter(|(_, l)| !l.trim().is_empty())
}

/// Every identifier that follows `prefix` in `line` (`crate::buffer::X` → `buffer`).
fn names_after<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    line.match_indices(prefix)
        .filter(|(i, _)| {
            // Not the tail of a longer path such as `mist_otel::crate` or `foo_super::`.
            line[..*i].chars().last().is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
        .map(|(i, _)| {
            let rest = &line[i + prefix.len()..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|n| !n.is_empty())
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a library file belongs to (`src/buffer/writer.rs` → `buffer`); `None`
/// for the crate root and the binary's own files.
fn top_module(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next()?.as_os_str().to_str()?.trim_end_matches(".rs").to_owned();
    (!matches!(first.as_str(), "lib" | "main" | "health_cli" | "webhook_cli" | "deadletter_cli"))
        .then_some(first)
}

#[test]
fn modules_import_only_along_the_data_flow() {
    let mut allowed: BTreeMap<&str, Vec<&str>> = ALLOWED.iter().map(|(m, may)| (*m, may.to_vec())).collect();
    // App wires the admin listener too; nothing else names admin.
    allowed.entry("app").or_default().push("admin");
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut violations = Vec::new();
    let mut seen_modules = BTreeSet::new();
    for path in &files {
        let Some(module) = top_module(path) else { continue };
        seen_modules.insert(module.clone());
        let may = allowed
            .get(module.as_str())
            .unwrap_or_else(|| panic!("module `{module}` has no place in ALLOWED: add it to the layout"));
        let text = std::fs::read_to_string(path).expect("readable source");
        for (line_no, line) in code_lines(&text) {
            for target in names_after(line, "crate::") {
                if target != module && !may.contains(&target) {
                    violations.push(format!("{}:{line_no}: `{module}` imports `{target}`", path.display()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "imports against the data flow:\n{}", violations.join("\n"));
    // The table describes the crate as it is: every listed module exists.
    for (module, _) in ALLOWED {
        assert!(seen_modules.contains(*module), "ALLOWED lists `{module}`, which is not in src/");
    }
}

/// Edges between the sibling files of each folder (`a.rs` naming `super::b` depends on `b.rs`).
fn sibling_edges(files: &[PathBuf]) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for path in files {
        let (Some(dir), Some(stem)) = (path.parent(), path.file_stem().and_then(|s| s.to_str())) else {
            continue;
        };
        if stem == "mod" {
            continue;
        }
        let text = std::fs::read_to_string(path).expect("readable source");
        for (_, line) in code_lines(&text) {
            for sibling in names_after(line, "super::") {
                let target = dir.join(format!("{sibling}.rs"));
                if sibling != stem && target.is_file() {
                    edges.entry(path.clone()).or_default().insert(target);
                }
            }
        }
    }
    edges
}

#[test]
fn no_two_files_of_a_folder_import_each_other() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let edges = sibling_edges(&files);
    let mut circles = Vec::new();
    // A circle of any length: depth-first search from each file, along the sibling edges.
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> = trail.iter().map(|p| p.display().to_string()).collect();
                    circles.push(format!("{} → {}", names.join(" → "), start.display()));
                } else if !trail.contains(next) && trail.len() < 8 {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    assert!(circles.is_empty(), "files that import each other:\n{}", circles.join("\n"));
}

#[test]
fn the_checks_see_what_they_claim_to() {
    // The line scanner finds paths in the forms the sources use, and only those.
    assert_eq!(names_after("use crate::buffer::{Buffer, x};", "crate::"), ["buffer"]);
    assert_eq!(names_after("let t = crate::clock::now_ns();", "crate::"), ["clock"]);
    assert!(names_after("use mist_otel_crate::x;", "crate::").is_empty());
    assert_eq!(names_after("use super::record::{Loc, HEADER};", "super::"), ["record"]);
    let code: Vec<_> = code_lines("/// see [`crate::app`]\nuse crate::mist; // crate::admin\n").collect();
    assert_eq!(code.len(), 1);
    assert_eq!(names_after(code[0].1, "crate::"), ["mist"]);
}

#[test]
fn the_crate_map_and_the_readme_name_every_room() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("lib.rs");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let layout = readme.split("## Layout").nth(1).expect("README has a Layout section");
    for (module, _) in ALLOWED {
        assert!(lib.contains(&format!("//! - [`{module}`]")), "src/lib.rs's map does not list `{module}`");
        let folder = format!("`src/{module}/`");
        let file = format!("`src/{module}.rs`");
        assert!(
            layout.contains(&folder) || layout.contains(&file),
            "README's Layout section does not list `{module}`"
        );
    }
}
