//! Our SQL is checked at compile time (`query!` and friends against `.sqlx/`, README "Code
//! map"). A query left to run time must say why: every `sqlx::query`, `query_as` or
//! `query_scalar` call (and `QueryBuilder`) in `src/` has a `// Runtime SQL: <reason>` comment
//! just above it, and none takes a fixed string, which a macro would check. The provisioner's
//! SQL against target servers (`src/provision/`) is not ours to check.

use std::path::Path;

use regex::Regex;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_runtime_query_is_composed_at_run_time_and_says_why() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let call =
        Regex::new(r"sqlx::(query|query_as|query_scalar)(::<[^>]*>)?\(|QueryBuilder::").unwrap();
    let literal = Regex::new(r#"^\s*r?#*""#).unwrap();
    let (mut runtime, mut problems) = (0, Vec::new());
    for file in files {
        let name = file.strip_prefix(&src).unwrap().display().to_string();
        if name.starts_with("provision/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for m in call.find_iter(&text) {
            runtime += 1;
            let line = text[..m.start()].matches('\n').count();
            if literal.is_match(&text[m.end()..]) {
                problems.push(format!(
                    "{name}:{}: a fixed string: use the macro",
                    line + 1
                ));
            }
            let said = lines[line.saturating_sub(4)..=line]
                .iter()
                .any(|l| l.contains("// Runtime SQL:"));
            if !said {
                problems.push(format!("{name}:{}: no `// Runtime SQL:` reason", line + 1));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(runtime > 0, "the scan found the runtime queries");
}
