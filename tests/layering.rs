//! The module layering of the two library crates, checked from their
//! source: each `lib.rs` declares a table of layers in its top doc comment
//! (`//! | N name | mod, mod |`). A unit of the table is a top-level module:
//! a file `src/NAME.rs` or a folder `src/NAME/` (every `.rs` file below it
//! counts as that unit's source). Every `crate::UNIT` a unit names must be
//! in a lower layer or its own, every unit must be in the table, and the
//! import graph must have no cycle. A new cycle or an upward import fails
//! here with the units named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name -> layer number, from the `//! | N ... | a, b |` rows.
fn layers(lib: &str) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! |") else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(n) = cells
            .first()
            .and_then(|c| c.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        for m in cells.get(1).unwrap_or(&"").split(',') {
            out.insert(m.trim().to_string(), n);
        }
    }
    out
}

/// The crate modules a source file names: `crate::x`, `crate::{x, y::z}`.
fn uses(src: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in src.match_indices("crate::") {
        let rest = &src[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group (nested braces skipped).
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            out.insert(ident(item.trim()));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// The source of a unit: the file, or every `.rs` file below the folder.
fn source(path: &Path) -> String {
    if !path.is_dir() {
        return std::fs::read_to_string(path).unwrap();
    }
    let mut entries: Vec<_> = std::fs::read_dir(path).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    let mut out = String::new();
    for e in entries {
        let p = e.path();
        if p.is_dir() || p.extension().is_some_and(|x| x == "rs") {
            out.push_str(&source(&p));
            out.push('\n');
        }
    }
    out
}

/// Checks one crate; returns the problems found.
fn check(dir: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(dir.join("lib.rs")).unwrap();
    let layer = layers(&lib);
    assert!(!layer.is_empty(), "{}: no layer table", dir.display());
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = e.file_type().unwrap().is_dir();
        let m = match name.strip_suffix(".rs") {
            Some(m) if !is_dir => m,
            _ if is_dir => name.as_str(),
            _ => continue,
        };
        if m == "lib" {
            continue;
        }
        let Some(&mine) = layer.get(m) else {
            problems.push(format!("{m}: not in the layer table of lib.rs"));
            continue;
        };
        let src = source(&e.path());
        let mut deps = uses(&src);
        deps.remove(m);
        for d in &deps {
            match layer.get(d) {
                // Re-exports at the crate root (`crate::Error`) are fine.
                None if d.starts_with(char::is_uppercase) => {}
                None => problems.push(format!("{m} uses crate::{d}, which is not a module")),
                Some(&theirs) if theirs > mine => problems.push(format!(
                    "{m} (layer {mine}) uses {d} (layer {theirs}): an upward import"
                )),
                Some(_) => {}
            }
        }
        deps.retain(|d| layer.contains_key(d));
        graph.insert(m.to_string(), deps);
    }
    // Depth-first search for a cycle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        problems: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            problems.push(format!("import cycle: {}", cycle.join(" -> ")));
            return;
        }
        if !done.insert(m.to_string()) {
            return;
        }
        path.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            visit(d, graph, path, done, problems);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done, &mut problems);
    }
    problems
}

#[test]
fn libraries_are_layered_without_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for krate in ["runtime", "image"] {
        for p in check(&root.join(krate).join("src")) {
            problems.push(format!("{krate}: {p}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_uses_and_cycles() {
    let src = "use crate::a::X;\nuse crate::{b, c::{D, E}, Error};\nlet x = crate::d::f();";
    let got: Vec<String> = uses(src).into_iter().collect();
    assert_eq!(got, ["Error", "a", "b", "c", "d"]);
    let t = "//! | 2 top | x |\n//! | 1 low | y, z |\n";
    let l = layers(t);
    assert_eq!((l["x"], l["y"], l["z"]), (2, 1, 1));
    // A crate with an upward import and a cycle is reported.
    let dir = std::env::temp_dir().join(format!("berth-layering-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lib.rs"), "//! | 1 a | y, z |\n//! | 0 b | w |\n").unwrap();
    std::fs::write(dir.join("y.rs"), "use crate::z;").unwrap();
    std::fs::write(dir.join("z.rs"), "use crate::y;").unwrap();
    std::fs::write(dir.join("w.rs"), "use crate::y;").unwrap();
    // A folder is one unit: its files' imports count as its own.
    std::fs::write(
        dir.join("lib.rs"),
        "//! | 1 a | y, z |\n//! | 0 b | w, f |\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("f/g")).unwrap();
    std::fs::write(dir.join("f/mod.rs"), "use crate::f::g;").unwrap();
    std::fs::write(dir.join("f/g/mod.rs"), "use crate::z;").unwrap();
    let p = check(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(p.iter().any(|p| p.contains("cycle")), "{p:?}");
    assert!(p.iter().any(|p| p.contains("upward")), "{p:?}");
    assert!(
        p.iter().any(|p| p.starts_with("f (layer 0) uses z")),
        "{p:?}"
    );
    assert!(!p.iter().any(|p| p.contains("f uses crate::f")), "{p:?}");
}
