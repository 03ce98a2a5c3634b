//! Finding webhook sample bodies, shared by the examples and the benchmarks (each includes
//! this file with `#[path]`; they are separate crates, so it cannot be a module of one).

use std::path::{Path, PathBuf};

/// `../shared/mist-samples` beside the repository (or `MIST_SAMPLES_DIR`).
pub fn samples_dir() -> PathBuf {
    std::env::var_os("MIST_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/mist-samples"))
}

/// The `.json` files directly in `dir`, sorted by path; none when `dir` cannot be read.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
}
