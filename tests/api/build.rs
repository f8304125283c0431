//! Guards the build rule that keeps `sam build` fast and never stale (README, "Deploy"):
//! every function runs the one multi-call binary, built by `functions/Makefile` through SAM's
//! makefile build method with SAM's own cache off, so cargo's fingerprinting decides what is
//! rebuilt. Reads files and asks `make -n`; builds nothing.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use meterbell::functions::by_binary;
use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn template() -> Value {
    serde_yaml::from_str(&read("template.yaml")).unwrap()
}

/// Logical ids of the template's functions.
fn functions(t: &Value) -> Vec<String> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, _)| id.as_str().unwrap().to_owned())
        .collect()
}

/// The `FUNCTIONS := ...` list of functions/Makefile.
fn makefile_functions() -> BTreeSet<String> {
    let text = read("functions/Makefile").replace("\\\n", " ");
    let line = text
        .lines()
        .find(|l| l.starts_with("FUNCTIONS :="))
        .expect("functions/Makefile has no FUNCTIONS := list");
    line["FUNCTIONS :=".len()..]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `key = value` lines of one `[section]` of samconfig.toml.
fn samconfig(section: &str) -> Vec<(String, String)> {
    let text = read("samconfig.toml");
    let mut inside = false;
    let mut out = vec![];
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
        } else if inside && !line.starts_with('#') {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }
    out
}

#[test]
fn every_function_runs_the_one_binary_through_the_makefile_build_method() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    let mut selectors = BTreeSet::new();
    for id in functions(&t) {
        let f = &t["Resources"][id.as_str()];
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("makefile"),
            "{id}: Metadata.BuildMethod must be makefile (functions/Makefile)"
        );
        assert!(
            f["Metadata"].get("BuildProperties").is_none(),
            "{id}: BuildProperties belong to the old one-binary-per-function build"
        );
        assert_eq!(
            f["Properties"]["CodeUri"].as_str(),
            Some("functions"),
            "{id}: CodeUri must be functions (where the Makefile is)"
        );
        let selector = f["Properties"]["Environment"]["Variables"]["MB_FUNCTION"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: Environment.Variables.MB_FUNCTION missing"));
        assert!(
            by_binary(selector).is_some(),
            "{id}: MB_FUNCTION={selector} names no handler"
        );
        assert!(
            selectors.insert(selector.to_owned()),
            "{id}: MB_FUNCTION={selector} is used twice"
        );
    }
    assert!(!read("template.yaml").contains("rust-cargolambda"));
}

#[test]
fn the_makefile_has_a_build_target_per_function_and_every_one_ships_the_same_bootstrap() {
    let t = template();
    let ids: BTreeSet<String> = functions(&t).into_iter().collect();
    assert_eq!(
        makefile_functions(),
        ids,
        "functions/Makefile FUNCTIONS must list exactly the template's functions"
    );
    let mut recipes = BTreeSet::new();
    for id in &ids {
        let out = Command::new("make")
            .args(["-n", "-s", "-C", "functions", &format!("build-{id}")])
            .env("ARTIFACTS_DIR", "/artifacts")
            .env("MAKEFLAGS", "")
            .current_dir(root())
            .output()
            .expect("make is needed by sam build (BuildMethod: makefile)");
        assert!(out.status.success(), "make -n build-{id}: {out:?}");
        let recipe = String::from_utf8(out.stdout).unwrap();
        assert!(
            recipe.contains("build --release --arm64") && recipe.contains("--bin meterbell-lambda"),
            "build-{id} must run the one cargo lambda build: {recipe}"
        );
        assert!(
            recipe.contains("/meterbell-lambda/bootstrap\" \"/artifacts/bootstrap\""),
            "build-{id} must copy the bootstrap into ARTIFACTS_DIR: {recipe}"
        );
        recipes.insert(recipe);
    }
    assert_eq!(recipes.len(), 1, "every function must build the same way");
    let manifest = read("functions/Cargo.toml");
    assert!(manifest.contains("name = \"meterbell-lambda\"\npath = \"src/main.rs\""));
}

#[test]
fn sams_cache_is_off_and_the_build_runs_in_the_source_tree() {
    let build = samconfig("default.build.parameters");
    let get = |k: &str| {
        build
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    // SAM's cache key is the CodeUri folder's hash: it misses edits under shared/ (stale code).
    assert_ne!(
        get("cached"),
        Some("true"),
        "samconfig.toml must not enable SAM's cache"
    );
    // In-source builds keep cargo's target/ between builds (a scratch copy would start cold).
    assert_eq!(get("build_in_source"), Some("true"));
}
