//! The top-level modules of `src/` form layers: no module imports, directly or through
//! others, a module that imports it back (README, "Code map"). Read from the sources: every
//! `crate::x` path (`use crate::{x, y}` groups included) and every `super::` path that climbs
//! to the crate root is an edge from the file's top-level module to `x`; a path to an item of
//! the crate root itself (`crate::AppState`) is an edge to `lib.rs`, which declares every
//! module and so closes a cycle with the module that uses it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

/// The node standing for the crate root (`src/lib.rs`).
const ROOT: &str = "lib.rs";

/// `from -> to`, with a file that makes the edge.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// The source with comments blanked and string and character literals emptied, so that
/// neither a path in a doc comment nor a `"{"` in a string counts.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
            continue;
        }
        if c == 'r' && matches!(next, Some('"' | '#')) {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) == Some(&'"') {
                j += 1;
                while j < b.len() {
                    if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
                continue;
            }
        }
        if c == '"' {
            let mut j = i + 1;
            while j < b.len() {
                if b[j] == '\\' {
                    j += 2;
                    continue;
                }
                j += 1;
                if b[j - 1] == '"' {
                    break;
                }
            }
            out.push_str("\"\"");
            i = j;
            continue;
        }
        if c == '\'' {
            // A character literal ('x', '\n', '\''); otherwise a lifetime, kept.
            if next == Some('\\') {
                let mut j = i + 3;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
                continue;
            }
            if b.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The first names of the items of a `{...}` use group that starts at `text[start..]` (just
/// after its `{`), and where the group ends.
fn group_heads(text: &str, start: usize) -> (Vec<String>, usize) {
    let mut depth = 1;
    let mut heads = Vec::new();
    let mut item = String::new();
    for (offset, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 || (depth == 1 && c == ',') {
            let head: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !head.is_empty() {
                heads.push(head);
            }
            item.clear();
            if depth == 0 {
                return (heads, start + offset + 1);
            }
        } else if depth >= 1 {
            item.push(c);
        }
    }
    (heads, text.len())
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs` and `main.rs`), and
/// how deep in the module tree its text sits (1 for `src/db.rs` or `src/db/mod.rs`).
fn place(path: &str) -> Option<(String, usize)> {
    let parts: Vec<&str> = path.split('/').collect();
    let first = *parts.first()?;
    if parts.len() == 1 {
        let name = first.strip_suffix(".rs")?;
        return (name != "lib" && name != "main").then(|| (name.to_owned(), 1));
    }
    let depth = parts.len() - usize::from(parts.last() == Some(&"mod.rs"));
    Some((first.to_owned(), depth))
}

/// The edges between top-level modules that `files` (path under `src/`, text) make.
fn graph(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(path, _)| place(path).map(|(m, _)| m))
        .collect();
    let mut graph = Graph::new();
    for m in &modules {
        graph
            .entry(ROOT.to_owned())
            .or_default()
            .insert(m.clone(), "lib.rs".to_owned());
    }
    let token = Regex::new(
        r"(?P<module>\bmod\s+\w+\s*\{)|(?P<path>\bcrate\s*::\s*|\b(?:super\s*::\s*)+)(?P<next>\{|\w+)|(?P<open>\{)|(?P<close>\})",
    )
    .unwrap();
    for (path, text) in files {
        let Some((top, base)) = place(path) else {
            continue;
        };
        let code = code_only(text);
        // For each open brace: whether it opened an inline `mod`.
        let mut braces: Vec<bool> = Vec::new();
        let mut edge = |target: &str| {
            let to = if modules.contains(target) {
                target.to_owned()
            } else {
                ROOT.to_owned()
            };
            if to != top {
                graph
                    .entry(top.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| format!("src/{path}"));
            }
        };
        for caps in token.captures_iter(&code) {
            if caps.name("module").is_some() {
                braces.push(true);
            } else if caps.name("open").is_some() {
                braces.push(false);
            } else if caps.name("close").is_some() {
                braces.pop();
            } else if let (Some(prefix), Some(next)) = (caps.name("path"), caps.name("next")) {
                let prefix = prefix.as_str();
                let to_root = if prefix.starts_with("crate") {
                    true
                } else {
                    let depth = base + braces.iter().filter(|m| **m).count();
                    prefix.matches("super").count() >= depth
                };
                if next.as_str() == "{" {
                    braces.push(false);
                    if to_root {
                        for head in group_heads(&code, next.end()).0 {
                            if head != "self" {
                                edge(&head);
                            }
                        }
                    }
                } else if to_root {
                    edge(next.as_str());
                }
            }
        }
    }
    graph
}

/// Every cycle of `graph`, one per strongly connected group of modules, written
/// `a -> b (src/a/x.rs) -> a (src/b/y.rs)`.
fn cycles(graph: &Graph) -> Vec<String> {
    let reaches = |from: &str, to: &str| -> Option<Vec<String>> {
        // Breadth first, for the shortest way back.
        let mut before: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from.to_owned()]);
        while let Some(at) = queue.pop_front() {
            for next in graph.get(&at).into_iter().flat_map(|e| e.keys()) {
                if next == to {
                    let mut way = vec![at.clone()];
                    while let Some(p) = before.get(way.last().unwrap()) {
                        way.push(p.clone());
                    }
                    way.reverse();
                    return Some(way);
                }
                if next != from && !before.contains_key(next) {
                    before.insert(next.clone(), at.clone());
                    queue.push_back(next.clone());
                }
            }
        }
        None
    };
    let mut seen: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    let mut found = Vec::new();
    for start in graph.keys() {
        let Some(mut way) = reaches(start, start) else {
            continue;
        };
        way.push(start.clone());
        let members: BTreeSet<String> = way.iter().cloned().collect();
        if !seen.insert(members) {
            continue;
        }
        let mut text = way[0].clone();
        for pair in way.windows(2) {
            text.push_str(&format!(" -> {} ({})", pair[1], graph[&pair[0]][&pair[1]]));
        }
        found.push(text);
    }
    found
}

fn sources(dir: &Path, under: &str, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if under.is_empty() {
            name.clone()
        } else {
            format!("{under}/{name}")
        };
        if entry.file_type().unwrap().is_dir() {
            sources(&entry.path(), &rel, out);
        } else if name.ends_with(".rs") {
            out.push((rel, std::fs::read_to_string(entry.path()).unwrap()));
        }
    }
}

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let mut all = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut all,
    );
    let graph = graph(&all);
    assert!(
        graph["web"].contains_key("db") && graph["db"].contains_key("domain"),
        "the scan sees the imports every layer makes: {graph:?}"
    );
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "import cycles between top-level modules of src/ (break each by moving the code that \
         makes its upward edge; the layers are in README's code map):\n{}",
        found.join("\n")
    );
    assert!(
        !graph.contains_key("domain"),
        "domain imports no other module: {:?}",
        graph.get("domain")
    );
}

#[test]
fn the_scan_finds_cycles_through_use_groups_super_and_root_items() {
    let cyclic = graph(&files(&[
        ("lib.rs", "pub mod a; pub mod b;"),
        ("a.rs", "use crate::{b::{self, X}, c};"),
        ("b/mod.rs", "mod inner;"),
        ("b/inner.rs", "use super::super::a::Y;"),
        ("c.rs", "fn f() -> crate::State { todo!() }"),
    ]));
    let found = cycles(&cyclic);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|c| c == "a -> b (src/a.rs) -> a (src/b/inner.rs)")
    );
    assert!(found.iter().any(|c| c.contains("c -> lib.rs (src/c.rs)")));
}

#[test]
fn the_scan_ignores_comments_strings_tests_and_paths_inside_the_module() {
    let clean = graph(&files(&[
        ("lib.rs", "pub mod a; pub mod b;"),
        ("a.rs", "use crate::b::Thing;"),
        (
            "b/mod.rs",
            "//! See `crate::a`.\n\
             /* crate::a */\n\
             const S: &str = \"crate::a {\";\n\
             const R: &str = r#\"crate::a\"#;\n\
             const C: char = '{';\n\
             fn f<'a>(x: &'a str) -> &'a str { x }\n\
             mod inner { use super::f; }\n\
             #[cfg(test)] mod tests { use super::*; }",
        ),
        ("b/deep.rs", "use super::f; use super::inner;"),
    ]));
    assert_eq!(cycles(&clean), Vec::<String>::new());
    assert_eq!(
        clean.get("b"),
        None,
        "b makes no edge: comments, strings and its own paths"
    );
}
