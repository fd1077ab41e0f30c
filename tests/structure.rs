//! The house keeps its shape: no module imports one that imports it back, among the siblings
//! of any folder of `src/`, `spdy/src/` and `relay-server/src/` (a circle means two files that
//! are one job, or a type that lives in the wrong one); and the layers of `src/` only import
//! the layers below them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/relay/dial.rs` is `relay::dial`; `mod.rs`, `lib.rs` and `main.rs` are their folder.
fn module_of(root: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The paths a `use` tree names, one level of `{…}` groups expanded.
fn use_paths(tree: &str) -> Vec<Vec<String>> {
    let tree: String = tree.split_whitespace().collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split("::").map(str::to_owned).collect()];
    };
    let prefix: Vec<String> = tree[..open]
        .trim_end_matches("::")
        .split("::")
        .map(str::to_owned)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .map(|item| {
            let mut path = prefix.clone();
            path.extend(
                item.split('{')
                    .next()
                    .unwrap()
                    .split("::")
                    .map(str::to_owned),
            );
            path
        })
        .collect()
}

/// Edges between sibling modules: `a::b` using `a::c::X` is `a::b` → `a::c`.
fn edges(root: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in files {
        let module = module_of(root, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        // Test modules may use anything.
        let text = text.split("#[cfg(test)]").next().unwrap();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let line = line.trim_start();
            let line = match line.strip_prefix("pub") {
                Some(rest) if rest.starts_with('(') => rest.split_once(") ").map_or("", |(_, r)| r),
                Some(rest) => rest.trim_start(),
                None => line,
            };
            let Some(start) = line.strip_prefix("use ") else {
                continue;
            };
            let mut tree = start.to_owned();
            while !tree.contains(';') {
                let Some(next) = lines.next() else { break };
                tree.push_str(next);
            }
            let tree = tree.split(';').next().unwrap_or_default();
            for path in use_paths(tree) {
                let target: Module = match path.first().map(String::as_str) {
                    Some("crate") => path[1..].to_vec(),
                    Some("super") => {
                        let mut base = module.clone();
                        let mut rest = &path[..];
                        while rest.first().map(String::as_str) == Some("super") {
                            base.pop();
                            rest = &rest[1..];
                        }
                        base.extend(rest.iter().cloned());
                        base
                    }
                    Some("self") => module.iter().chain(&path[1..]).cloned().collect(),
                    _ => continue,
                };
                let common = module
                    .iter()
                    .zip(&target)
                    .take_while(|(a, b)| a == b)
                    .count();
                if common < module.len() && common < target.len() {
                    edges
                        .entry(module[..=common].to_vec())
                        .or_default()
                        .insert(target[..=common].to_vec());
                }
            }
        }
    }
    edges
}

/// The modules that reach themselves again (each circle once, as the set of its members).
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> BTreeSet<BTreeSet<String>> {
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&Module> = edges.get(from).into_iter().flatten().collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.clone()) {
                todo.extend(edges.get(m).into_iter().flatten());
            }
        }
        seen
    };
    let reaches: BTreeMap<&Module, BTreeSet<Module>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut found = BTreeSet::new();
    for (m, reached) in &reaches {
        if reached.contains(*m) {
            let circle: BTreeSet<String> = reached
                .iter()
                .filter(|other| reaches.get(other).is_some_and(|r| r.contains(*m)))
                .map(|other| other.join("::"))
                .collect();
            found.insert(circle);
        }
    }
    found
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for dir in ["src", "spdy/src", "relay-server/src"] {
        let found = circles(&edges(&root.join(dir)));
        assert!(found.is_empty(), "import circles in {dir}/: {found:?}");
    }
}

#[test]
fn the_checker_sees_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::write(dir.path().join("lib.rs"), "mod a;\n").unwrap();
    std::fs::write(dir.path().join("a/mod.rs"), "mod b;\nmod c;\n").unwrap();
    std::fs::write(dir.path().join("a/b.rs"), "use super::{c::C, d};\n").unwrap();
    std::fs::write(dir.path().join("a/c.rs"), "use crate::a::b::B;\n").unwrap();
    let found = circles(&edges(dir.path()));
    let expected: BTreeSet<String> = ["a::b", "a::c"].map(String::from).into();
    assert_eq!(found, BTreeSet::from([expected]));
}

/// The layers of `src/`, lowest first: each may use those before it, never one after it.
/// The data path reads upwards: source → config → plan (reconcile) → engine, which drives
/// forwards over transports to clusters and relays; the command line sits on top.
const LAYERS: [&str; 17] = [
    "error_chain",
    "backoff",
    "target",
    "api_error",
    "config",
    "state",
    "edit",
    "source",
    "reconcile",
    "resolve",
    "forward",
    "transport",
    "cluster",
    "relay",
    "interop",
    "engine",
    "cli",
];

/// Every `crate::<layer>` a file of each layer names, as (from, to) pairs.
fn layer_uses(src: &Path) -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut uses = BTreeSet::new();
    for file in files {
        let Some(from) = module_of(src, &file).first().cloned() else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("crate::") {
            let to: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if to != from {
                uses.insert((from.clone(), to));
            }
        }
    }
    uses
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut upwards = Vec::new();
    for (from, to) in layer_uses(&src) {
        match (rank(&from), rank(&to)) {
            (Some(f), Some(t)) if t > f => upwards.push(format!("{from} uses {to}")),
            (None, _) if from != "lib" && from != "main" => {
                upwards.push(format!("{from} is in no layer (add it to LAYERS)"))
            }
            _ => {}
        }
    }
    assert!(upwards.is_empty(), "{upwards:#?}");
}
