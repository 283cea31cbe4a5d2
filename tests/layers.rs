//! The direction of dependencies, checked from the source text (issue 13: "no cycles between
//! modules; `lib.rs`'s layout note says the true direction").
//!
//! Two rules, read from every `crate::...` and `super::...` path in `src/` outside comments and
//! `#[cfg(test)]` modules:
//!
//! 1. A top-level module uses only modules of a lower layer in [`LAYERS`] (the order the
//!    layout note in `src/lib.rs` gives), never one of its own layer or above.
//! 2. Inside a folder, the files (and sub-folders) that are its child modules use each other
//!    without a cycle. A folder's own `mod.rs` is its parent and is left out: it declares its
//!    children, and they may use what it defines.
//!
//! A path written in a string or a macro would be read too; none is today. A `use` of a child
//! module by a relative path (`console::routes` in `http/mod.rs`) is a parent using its child,
//! which both rules allow.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level modules from the bottom up; each may use only the layers before its own.
const LAYERS: &[&[&str]] = &[
    &["domain", "supervisor"],
    &["clock"],
    &["store"],
    &["center", "cometd"],
    &["push"],
    &["router", "config"],
    &["expiry", "server"],
    &["metrics"],
    &["app"],
    &["http"],
    // Start-up wires every part together, the protocol adapters included (Chat API v2's
    // CometD channel is served by an `http` type the CometD server is handed).
    &["startup", "cli"],
    &["fuzzing"],
];

/// One source file: its module path (`["http", "console", "users"]`) and its code without
/// comments and tests.
struct Source {
    file: PathBuf,
    module: Vec<String>,
    code: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&root).expect("under src/");
            let mut module: Vec<String> = relative
                .iter()
                .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            let text = fs::read_to_string(&file).expect("readable source");
            Source {
                file,
                module,
                code: without_comments_and_tests(&text),
            }
        })
        .collect()
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The code of a file up to its first `#[cfg(test)]`, with `//` comments removed.
fn without_comments_and_tests(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .map(|line| match line.find("//") {
            // `"http://..."` in a string is not a comment; no path is written after one.
            Some(at) if !line[..at].ends_with(':') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path that `source` names, made absolute: `crate::a::b` gives `[a, b]`,
/// `super::x` in `http/desktop.rs` gives `[http, x]`, and a group
/// `super::{form, reply::json}` gives one path per item.
fn references(source: &Source) -> Vec<Vec<String>> {
    let code = &source.code;
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = code[at..].find(['c', 's']) {
        let start = at + offset;
        at = start + 1;
        if start > 0 {
            let before = code.as_bytes()[start - 1];
            if before.is_ascii_alphanumeric() || before == b'_' || before == b':' {
                continue;
            }
        }
        let rest = &code[start..];
        let (mut base, tail) = if let Some(tail) = rest.strip_prefix("crate::") {
            (Vec::new(), tail)
        } else if rest.starts_with("super::") {
            let mut base = source.module.clone();
            let mut tail = rest;
            while let Some(next) = tail.strip_prefix("super::") {
                base.pop();
                tail = next;
            }
            (base, tail)
        } else {
            continue;
        };
        if let Some(group) = tail.strip_prefix('{') {
            for item in top_level_items(group) {
                let mut path = base.clone();
                path.extend(leading_path(item));
                found.push(path);
            }
        } else {
            base.extend(leading_path(tail));
            found.push(base);
        }
    }
    found
}

/// The comma-separated items of a `{...}` group (nested groups kept whole), up to its `}`.
fn top_level_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut from) = (0usize, 0usize);
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(group[from..index].trim());
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(group[from..index].trim());
                from = index + 1;
            }
            _ => {}
        }
    }
    items
}

/// The identifiers of `a::b::c...` at the start of `text`.
fn leading_path(text: &str) -> Vec<String> {
    let mut path = Vec::new();
    let mut rest = text;
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        path.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    path
}

/// The modules that exist: every source's module path and all its prefixes.
fn modules(sources: &[Source]) -> BTreeSet<Vec<String>> {
    let mut all = BTreeSet::new();
    for source in sources {
        for len in 1..=source.module.len() {
            all.insert(source.module[..len].to_vec());
        }
    }
    all
}

/// For each folder, the edges between its child modules: `from -> to` where a file under
/// `folder/from` names something under `folder/to`.
type Edges = BTreeMap<Vec<String>, BTreeMap<String, BTreeMap<String, PathBuf>>>;

fn edges(sources: &[Source]) -> Edges {
    let known = modules(sources);
    let mut edges = Edges::new();
    for source in sources {
        for path in references(source) {
            let common = source
                .module
                .iter()
                .zip(&path)
                .take_while(|(a, b)| a == b)
                .count();
            let (Some(from), Some(to)) = (source.module.get(common), path.get(common)) else {
                continue; // a module naming itself, its parent or its own child
            };
            if !known.contains(&path[..=common]) {
                continue; // an item of the folder's own module, not a child module
            }
            edges
                .entry(path[..common].to_vec())
                .or_default()
                .entry(from.clone())
                .or_default()
                .entry(to.clone())
                .or_insert_with(|| source.file.clone());
        }
    }
    edges
}

#[test]
fn top_level_modules_use_only_lower_layers() {
    let sources = sources();
    let layer_of = |name: &str| LAYERS.iter().position(|layer| layer.contains(&name));
    let top = edges(&sources).remove(&Vec::new()).unwrap_or_default();
    let mut wrong = Vec::new();
    for (from, uses) in &top {
        let Some(from_layer) = layer_of(from) else {
            wrong.push(format!("`{from}` is in no layer of LAYERS: add it"));
            continue;
        };
        for (to, file) in uses {
            match layer_of(to) {
                Some(to_layer) if to_layer < from_layer => {}
                Some(_) => wrong.push(format!(
                    "`{from}` uses `{to}` (in {}), which is not below it",
                    file.display()
                )),
                None => wrong.push(format!("`{to}` is in no layer of LAYERS: add it")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_folder_has_a_cycle_between_its_files() {
    let sources = sources();
    let mut cycles = Vec::new();
    for (folder, graph) in edges(&sources) {
        if folder.is_empty() {
            continue; // the top level has its layers
        }
        if let Some(cycle) = find_cycle(&graph) {
            let ties: Vec<String> = cycle
                .windows(2)
                .map(|pair| {
                    let file = &graph[&pair[0]][&pair[1]];
                    format!("{} -> {} (in {})", pair[0], pair[1], file.display())
                })
                .collect();
            cycles.push(format!("src/{}: {}", folder.join("/"), ties.join(", ")));
        }
    }
    assert!(cycles.is_empty(), "cycles:\n{}", cycles.join("\n"));
}

/// A cycle of `graph` as its nodes, the first repeated at the end; `None` when it has none.
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, PathBuf>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let (mut done, mut stack) = (BTreeSet::new(), Vec::new());
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut stack))
}

/// The reader itself: it must see the edges that made the cycles this test now forbids.
#[test]
fn the_reader_sees_grouped_nested_and_crate_paths() {
    let source = Source {
        file: PathBuf::from("src/http/desktop.rs"),
        module: vec!["http".into(), "desktop".into()],
        code: without_comments_and_tests(
            "use super::{form, reply::json, voice::{a, b}};\n\
             // use super::admin;\n\
             let x = super::super::store::Store::open();\n\
             use crate::app::chat::{self, Interaction};\n\
             let url = \"http://example\"; supercrate::nothing; asuper::nothing;\n\
             #[cfg(test)]\nmod tests { use super::console; }",
        ),
    };
    let found = references(&source);
    let expected: Vec<Vec<String>> = [
        &["http", "form"][..],
        &["http", "reply", "json"],
        &["http", "voice"],
        &["store", "Store", "open"],
        &["app", "chat"],
    ]
    .iter()
    .map(|path| path.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(found, expected);

    let mut graph = BTreeMap::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph
            .entry(from.to_string())
            .or_insert_with(BTreeMap::new)
            .insert(to.to_string(), PathBuf::new());
    }
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    graph.get_mut("c").unwrap().remove("a");
    assert_eq!(find_cycle(&graph), None);
}
