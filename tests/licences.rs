//! The default build stays MIT/Apache-clean: every crate it compiles in (normal and build
//! dependencies of the default features, from `cargo metadata`'s resolve graph) carries a
//! permissive licence. A copyleft crate (GPL, LGPL, AGPL, MPL, EPL, ...) may only come in behind
//! an opt-in feature, which this graph does not include.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Permissive SPDX identifiers (each alone is enough for a term of an `AND`).
const PERMISSIVE: &[&str] = &[
    "MIT",
    "MIT-0",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "CC0-1.0",
    "Unlicense",
    "BSL-1.0",
    "WTFPL",
];

/// True when some alternative of the SPDX expression (`OR`, or the old `/` form) is made only of
/// permissive terms (`AND`).
fn permissive(expr: &str) -> bool {
    let flat = expr.replace(['(', ')'], "");
    flat.split(" OR ")
        .flat_map(|alt| alt.split('/'))
        .any(|alt| {
            alt.split(" AND ")
                .map(str::trim)
                .all(|term| PERMISSIVE.contains(&term))
        })
}

#[test]
fn the_expression_reader_tells_copyleft_from_permissive() {
    assert!(permissive("MIT OR Apache-2.0"));
    assert!(permissive("MIT/Apache-2.0"));
    assert!(permissive("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(permissive("MIT OR MPL-2.0"));
    assert!(!permissive("MPL-2.0"));
    assert!(!permissive("GPL-2.0-or-later"));
    assert!(!permissive("MIT AND LGPL-2.1-or-later"));
    assert!(!permissive(""));
}

#[test]
fn the_default_build_compiles_in_only_permissive_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages: HashMap<&str, &Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root = packages
        .values()
        .find(|p| p["name"] == "scope-deck")
        .map(|p| p["id"].as_str().unwrap())
        .unwrap();

    let mut seen = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let shipped = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if shipped {
                todo.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    assert!(seen.len() > 100, "only {} crates found", seen.len());
    let offenders: Vec<String> = seen
        .iter()
        .map(|id| packages[id])
        .filter(|p| !permissive(p["license"].as_str().unwrap_or("")))
        .map(|p| format!("{} {} ({})", p["name"], p["version"], p["license"]))
        .collect();
    assert!(
        offenders.is_empty(),
        "not permissive in the default build (move behind an opt-in feature, or replace): {offenders:#?}"
    );
}
