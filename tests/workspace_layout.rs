//! The workspace's shape, checked so that a wrong edge or an overgrown file fails the build:
//! - the crates depend one way, `engine` <- `replication` <- `net` <- `sluice` (STYLE.md §3); a new crate or a
//!   new edge between them is a deliberate change to this test;
//! - no source file outside `third_party/` is over 800 lines.
//!
//! Module cycles inside a crate are checked by `scripts/check-module-cycles.py`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each workspace crate and the workspace crates it may depend on (normal, dev and build dependencies alike).
const ALLOWED: &[(&str, &[&str])] = &[
    ("sluice-engine", &[]),
    ("sluice-replication", &["sluice-engine"]),
    ("sluice-net", &["sluice-engine", "sluice-replication"]),
    ("sluice", &["sluice-engine", "sluice-replication", "sluice-net"]),
    // A test tool (the power-loss filesystem): it depends on no Sluice crate and none depends on it.
    ("lossyfs", &[]),
];

const MAX_LINES: usize = 800;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn crates_depend_one_way_engine_replication_net_sluice() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let members: BTreeSet<String> =
        metadata["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    let expected: BTreeSet<String> = ALLOWED.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(members, expected, "the workspace's crates changed: place the new one in ALLOWED deliberately");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        for dependency in package["dependencies"].as_array().unwrap() {
            let target = dependency["name"].as_str().unwrap();
            if members.contains(target) {
                assert!(
                    allowed[name].contains(&target),
                    "{name} depends on {target} ({} dependency): crates depend one way, engine <- replication <- net \
                     <- sluice",
                    dependency["kind"].as_str().unwrap_or("normal")
                );
            }
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | "third_party" | "node_modules" | ".git" | ".venv") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut files = Vec::new();
    rust_files(&root(), &mut files);
    assert!(files.len() > 50, "found only {} source files under {}", files.len(), root().display());
    let long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", path.strip_prefix(root()).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by concern, below {MAX_LINES} lines: {long:?}");
}
