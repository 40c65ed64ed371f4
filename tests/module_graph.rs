//! The crate's top-level modules import each other in one direction only:
//! the core (what a library user compiles) never reaches into the service,
//! and no new import cycle appears. The graph is read from the sources
//! (`crate::<module>` paths), so this runs in CI without extra tools.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What `cargo build --no-default-features` compiles.
const CORE: &[&str] = &["bridge", "identity", "private_file", "problems", "tokens"];

/// The one cycle left, in the service layer: `Config` aggregates the
/// sections of the service, the stores and the PHP bridge, whose setup
/// reads the whole `Config`. Shrink this list; never grow it.
const KNOWN_CYCLE: &[&str] = &["config", "legacy", "service", "stores"];

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let tops: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_owned();
            (p.is_dir() || p.extension().is_some_and(|e| e == "rs")).then_some(name)
        })
        .filter(|n| n != "lib" && n != "main")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap();
            let from = first.trim_end_matches(".rs").to_owned();
            if !tops.contains(&from) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            let mut targets = BTreeSet::new();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    for part in group.split(',') {
                        targets.insert(ident(part.trim()));
                    }
                } else {
                    targets.insert(ident(rest));
                }
            }
            for t in targets {
                if tops.contains(&t) && t != from {
                    edges.entry(from.clone()).or_default().insert(t);
                }
            }
        }
    }
    edges
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Modules reachable from `start` (itself excluded unless on a cycle).
fn reachable(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = edges.get(start).into_iter().flatten().cloned().collect();
    while let Some(m) = todo.pop() {
        if seen.insert(m.clone()) {
            todo.extend(edges.get(&m).into_iter().flatten().cloned());
        }
    }
    seen
}

#[test]
fn the_core_imports_nothing_of_the_service() {
    let edges = graph();
    assert!(
        edges.contains_key("bridge"),
        "the graph was read: {edges:?}"
    );
    for core in CORE {
        let outside: Vec<_> = reachable(&edges, core)
            .into_iter()
            .filter(|m| !CORE.contains(&m.as_str()))
            .collect();
        assert!(
            outside.is_empty(),
            "core module `{core}` reaches {outside:?}"
        );
    }
}

#[test]
fn no_import_cycles_beyond_the_known_one() {
    let edges = graph();
    let on_cycles: BTreeSet<String> = edges
        .keys()
        .filter(|m| reachable(&edges, m).contains(*m))
        .cloned()
        .collect();
    let known: BTreeSet<String> = KNOWN_CYCLE.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        on_cycles, known,
        "modules on import cycles (update KNOWN_CYCLE only to shrink it): {edges:#?}"
    );
}
