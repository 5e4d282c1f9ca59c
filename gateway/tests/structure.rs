//! The gateway's folders form layers (docs/ARCHITECTURE.md): no folder or top-level
//! module reaches, through `crate::` paths, one that reaches back to it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules of `crate` a source file names, comments left out: `crate::a::b` and
/// each entry of `crate::{a, b::c}`.
fn crate_references(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').map(|p| ident(p.trim())));
        } else {
            names.insert(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

/// A cycle through `from` in `graph`, if any, as the path that closes it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        target: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let last = path.last().cloned().unwrap_or_default();
        for next in graph.get(&last).into_iter().flatten() {
            if next == target {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, target, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_string()];
    walk(graph, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_import_circles_between_folders() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let unit = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if unit == "lib" || unit == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let uses = graph.entry(unit.clone()).or_default();
        uses.extend(crate_references(&text).into_iter().filter(|n| *n != unit));
    }
    assert!(
        graph.contains_key("registry") && graph["routes"].contains("state"),
        "the source walk found the gateway's modules: {graph:?}"
    );
    for unit in graph.keys() {
        if let Some(path) = cycle(&graph, unit) {
            panic!("import circle: {}", path.join(" -> "));
        }
    }
}

#[test]
fn references_are_read_from_paths_and_groups() {
    let text = "use crate::limits::Concurrency;\n// crate::commented\nuse crate::{errors::HttpError, state};\n";
    let names: Vec<String> = crate_references(text).into_iter().collect();
    assert_eq!(names, ["errors", "limits", "state"]);
}

#[test]
fn a_planted_circle_is_found() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            g.entry(from.to_string())
                .or_default()
                .insert(to.to_string());
        }
        g
    };
    let layered = graph(&[
        ("routes", "state"),
        ("state", "registry"),
        ("registry", "limits"),
    ]);
    assert!(layered.keys().all(|u| cycle(&layered, u).is_none()));
    let circle = graph(&[
        ("routes", "state"),
        ("state", "registry"),
        ("registry", "routes"),
    ]);
    assert_eq!(
        cycle(&circle, "routes").unwrap(),
        ["routes", "state", "registry", "routes"]
    );
}
