//! The collector's layering, as its top doc comment (`src/lib.rs`) states it: every `crate::`
//! path in a module names a module of a lower layer, or the module itself. A new module has
//! to be given a layer there before this passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers listed in lib.rs's doc comment (`1. `a`, `b`: ...`), module -> layer.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    for line in lib.lines().filter_map(|l| l.strip_prefix("//! ")) {
        let Some((number, rest)) = line.split_once(". ") else {
            continue;
        };
        let Ok(layer) = number.trim().parse::<usize>() else {
            continue;
        };
        // Module names are the backquoted words before the colon.
        let names = rest.split(':').next().unwrap_or_default();
        for name in names.split('`').skip(1).step_by(2) {
            layers.insert(name.to_owned(), layer);
        }
    }
    layers
}

/// Every source file under `dir`, with the top-level module it belongs to.
fn modules(dir: &Path, top: Option<&str>, found: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("readable").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if path.is_dir() {
            modules(&path, Some(top.unwrap_or(&stem)), found);
        } else if path.extension().is_some_and(|e| e == "rs") && path.file_name() != Some("lib.rs".as_ref()) {
            found.push((top.unwrap_or(&stem).to_owned(), path));
        }
    }
}

/// The top-level modules named by `crate::` paths in `source` (comments included: a doc link
/// upwards is a dependency too).
fn uses(source: &str) -> Vec<String> {
    let mut names = vec![];
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.push(name);
        }
    }
    names
}

#[test]
fn every_module_imports_only_from_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers(&std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs"));
    assert!(
        layers.len() >= 10,
        "the layer list in lib.rs was not found: {layers:?}"
    );
    let mut files = vec![];
    modules(&src, None, &mut files);
    let mut wrong = vec![];
    for (module, path) in &files {
        let Some(&own) = layers.get(module) else {
            wrong.push(format!("{module} ({}) has no layer in lib.rs", path.display()));
            continue;
        };
        let source = std::fs::read_to_string(path).expect("readable");
        for used in uses(&source) {
            match layers.get(&used) {
                _ if used == *module => {}
                Some(&layer) if layer < own => {}
                Some(&layer) => wrong.push(format!(
                    "{} (layer {own}) uses crate::{used} (layer {layer})",
                    path.display()
                )),
                None => wrong.push(format!(
                    "{} uses crate::{used}, which has no layer",
                    path.display()
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_an_upward_use() {
    let layers = layers("//! 1. `decode`, `health`: low\n//! 2. `stat`: high\n");
    assert_eq!(layers.get("decode"), Some(&1));
    assert_eq!(layers.get("stat"), Some(&2));
    assert_eq!(
        uses("use crate::stat::short_number;\nfn f() { crate::health::now(); }"),
        ["stat", "health"]
    );
}
