//! Tidy: the workspace's structural rules, checked on every test run from the source tree and
//! `cargo metadata` alone — no network, no build of anything but this test, a few seconds.
//!
//! Owns five checks: (a) every source file under a crate's `src/` (and `testkit/src`) opens
//! with a `//!` module doc — files under `tests/` and `benches/` are not checked, they are
//! documented by their test names; (b) the crate graph has no forbidden edge (schema → any
//! swing crate; engine → providers, sim or testkit; providers → sim outside dev-dependencies;
//! the binary reaches sim and testkit only as optional dependencies once the `demo` feature
//! exists); (c) step-id literals (the ids of the procedure contract) in the engine's non-test
//! code live in the catalogue and the invariants only, plus [`STEP_ID_ALLOWLIST`]; (d) the
//! engine's top-level modules import each other without cycles; (e) no `#[path]` attribute.
//! Each check fails on the first breach and prints what it found.
//!
//! Must not: touch the network, build or run the product, or write anywhere.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted, relative paths with `/`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root())
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

fn parse(p: &Path) -> syn::File {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", rel(p)));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("parse {}: {e}", rel(p)))
}

// ---------------------------------------------------------------------------------------------
// (a) module docs

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let dirs = [
        "src",
        "engine/src",
        "providers/src",
        "schema/src",
        "sim/src",
        "testkit/src",
    ];
    let mut missing = Vec::new();
    let mut checked = 0;
    for d in dirs {
        for f in rust_files(&root().join(d)) {
            checked += 1;
            let text = std::fs::read_to_string(&f).expect("read");
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("#!["));
            if !first.is_some_and(|l| l.starts_with("//!")) {
                missing.push(rel(&f));
            }
        }
    }
    assert!(checked > 50, "only {checked} files found: wrong root?");
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` doc saying what they own and must not do:\n  {}",
        missing.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// (b) crate graph

#[test]
fn the_crate_graph_has_no_forbidden_edge() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for pkg in packages {
        let name = pkg["name"].as_str().unwrap_or_default();
        seen.insert(name.to_owned());
        let features = pkg["features"].as_object();
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            let to = dep["name"].as_str().unwrap_or_default();
            let kind = dep["kind"].as_str().unwrap_or("normal");
            let optional = dep["optional"].as_bool().unwrap_or(false);
            let edge = format!(
                "{name} -> {to} ({kind}{})",
                if optional { ", optional" } else { "" }
            );
            let swing = to.starts_with("swing-") || to == "swing";
            let forbidden = match name {
                "swing-schema" => swing,
                "swing-engine" => match to {
                    "swing-providers" | "swing-sim" => true,
                    "swing-testkit" => kind != "dev",
                    _ => false,
                },
                "swing-providers" => to == "swing-sim" && kind != "dev",
                "swing" => {
                    // Simulator and scenario kit reach the binary only behind `demo`, once
                    // that feature exists.
                    let demo_only = matches!(to, "swing-sim" | "swing-testkit") && kind != "dev";
                    let has_demo = features.is_some_and(|f| f.contains_key("demo"));
                    if demo_only && !has_demo {
                        println!("note: {edge}: no `demo` feature yet, optional flag not checked");
                    }
                    demo_only && has_demo && !optional
                }
                _ => false,
            };
            if forbidden {
                violations.push(edge);
            }
        }
    }
    for must in [
        "swing",
        "swing-schema",
        "swing-engine",
        "swing-providers",
        "swing-sim",
    ] {
        assert!(seen.contains(must), "{must} missing from cargo metadata");
    }
    assert!(
        violations.is_empty(),
        "forbidden crate edges:\n  {}",
        violations.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// Shared syn walking: non-test code only, string literals (macros included), paths.

/// True for test-only items: `#[cfg(test)]` (or a `cfg` requiring `test`, not `not(test)`) and
/// test functions.
fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<proc_macro2::TokenStream>().is_ok_and(|t| {
                let tts: Vec<_> = t.into_iter().collect();
                tts.iter().any(is_test_ident)
                    && !tts
                        .iter()
                        .any(|tt| matches!(tt, proc_macro2::TokenTree::Ident(i) if i == "not"))
            })
    }) || attrs.iter().any(|a| {
        // `#[test]`, `#[tokio::test]`, …
        a.path().segments.last().is_some_and(|s| s.ident == "test")
    })
}

fn is_test_ident(tt: &proc_macro2::TokenTree) -> bool {
    match tt {
        proc_macro2::TokenTree::Ident(i) => i == "test",
        proc_macro2::TokenTree::Group(g) => g.stream().into_iter().any(|t| is_test_ident(&t)),
        _ => false,
    }
}

/// Everything the non-test code of one file says: string literals and module references.
#[derive(Default)]
struct Scan {
    /// String literal values (outside attributes, so doc comments do not count).
    literals: Vec<String>,
    /// `crate::a::…` / `super::…` paths, as segment lists (`crate`/`super` kept).
    paths: Vec<Vec<String>>,
    /// `#[path = …]` attributes anywhere, test code included.
    path_attrs: usize,
}

impl Scan {
    fn tokens(&mut self, ts: proc_macro2::TokenStream) {
        let tts: Vec<_> = ts.into_iter().collect();
        let mut i = 0;
        while i < tts.len() {
            match &tts[i] {
                proc_macro2::TokenTree::Literal(l) => {
                    if let syn::Lit::Str(s) = syn::Lit::new(l.clone()) {
                        self.literals.push(s.value());
                    }
                }
                proc_macro2::TokenTree::Group(g) => self.tokens(g.stream()),
                proc_macro2::TokenTree::Ident(id) if id == "crate" || id == "super" => {
                    // ident (:: ident)* inside a macro body
                    let mut segs = vec![id.to_string()];
                    let mut j = i + 1;
                    loop {
                        let colons = matches!((tts.get(j), tts.get(j + 1)),
                            (Some(proc_macro2::TokenTree::Punct(a)), Some(proc_macro2::TokenTree::Punct(b)))
                            if a.as_char() == ':' && b.as_char() == ':');
                        match (colons, tts.get(j + 2)) {
                            (true, Some(proc_macro2::TokenTree::Ident(n))) => {
                                segs.push(n.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    if segs.len() > 1 {
                        self.paths.push(segs);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.push_use(prefix, Some(n.ident.to_string())),
            syn::UseTree::Rename(r) => self.push_use(prefix, Some(r.ident.to_string())),
            syn::UseTree::Glob(_) => self.push_use(prefix, None),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    fn push_use(&mut self, prefix: &[String], last: Option<String>) {
        let mut segs = prefix.to_vec();
        segs.extend(last.filter(|l| l != "self"));
        if matches!(segs.first().map(String::as_str), Some("crate" | "super")) && segs.len() > 1 {
            self.paths.push(segs);
        }
    }
}

impl<'ast> Visit<'ast> for Scan {
    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        if a.path().is_ident("path") {
            self.path_attrs += 1;
        }
    }
    fn visit_item(&mut self, i: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match i {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(x) => &x.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Macro(m) => &m.attrs,
            _ => &[],
        };
        if is_cfg_test(attrs) {
            // Test code may name any step; only `#[path]` is counted there too.
            let mut inner = Scan::default();
            syn::visit::visit_item(&mut inner, i);
            self.path_attrs += inner.path_attrs;
            return;
        }
        syn::visit::visit_item(self, i);
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_cfg_test(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
    fn visit_lit_str(&mut self, s: &'ast syn::LitStr) {
        self.literals.push(s.value());
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if matches!(segs.first().map(String::as_str), Some("crate" | "super")) && segs.len() > 1 {
            self.paths.push(segs);
        }
        syn::visit::visit_path(self, p);
    }
}

fn scan(p: &Path) -> Scan {
    let mut s = Scan::default();
    s.visit_file(&parse(p));
    s
}

// ---------------------------------------------------------------------------------------------
// (c) step-id literals

/// Literals the engine keeps outside the catalogue, each with the reason it must stay.
/// (file under `engine/src`, literal, why)
/// Empty: the engine decides on `StepOp`; journals name steps by the catalogue's ids.
const STEP_ID_ALLOWLIST: &[(&str, &str, &str)] = &[];

/// Step names that follow an appliance id (`a.install`, `{x}.install`, `.install`).
const APPLIANCE_STEPS: &[&str] = &[
    "health",
    "clock",
    "tls",
    "install",
    "online",
    "verify",
    "verify-manual",
    "restore",
    "decommission",
];

/// Fixed groups and the step names (or name prefixes) under them.
const GROUP_STEPS: &[(&str, &[&str])] = &[
    ("preflight", &["window"]),
    ("backup", &["config", "certificates", "vault-key"]),
    ("clients", &["throttle", "wait", "followup"]),
    (
        "failover",
        &["sync", "break", "keys", "establish", "resync", "promote-"],
    ),
    ("switch", &["prepare", "to-", "verify-", "restore"]),
    ("certs", &["export", "import", "default"]),
];

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether a string literal is (or contains, as in a format string) a step id of the
/// procedure contract.
fn names_a_step(lit: &str) -> bool {
    for (dot, _) in lit.match_indices('.') {
        let after = &lit[dot + 1..];
        let word: String = after.chars().take_while(|c| ident_char(*c)).collect();
        // What precedes the dot: an id, a `{placeholder}`, or nothing (a suffix match).
        let head = &lit[..dot];
        let start = head
            .char_indices()
            .rev()
            .find(|(_, c)| !(ident_char(*c) || *c == '{' || *c == '}'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let before = &head[start..];
        let end_ok = after[word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !ident_char(c) && c != '.');
        if APPLIANCE_STEPS.contains(&word.as_str()) && end_ok && (dot == 0 || !before.is_empty()) {
            return true;
        }
        if let Some((_, names)) = GROUP_STEPS.iter().find(|(g, _)| *g == before) {
            let hit = names.iter().any(|n| {
                if n.ends_with('-') {
                    word.starts_with(n)
                } else {
                    word == *n && end_ok
                }
            });
            if hit {
                return true;
            }
        }
    }
    false
}

#[test]
fn the_step_id_matcher_knows_the_contract() {
    for yes in [
        "a.health",
        "{x}.install",
        ".install",
        "b.verify-manual",
        "{}.decommission",
        "preflight.window",
        "backup.vault-key",
        "clients.followup",
        "failover.promote-b",
        "switch.to-",
        "switch.restore",
        "switch.verify-dns",
        "certs.default",
        "step {} (a.online) failed",
    ] {
        assert!(names_a_step(yes), "{yes} should count as a step id");
    }
    for no in [
        "a.example.test",
        "install",
        "10.0.0.1",
        "self.install_path",
        "backup.tar",
        "switch.kind",
        "plan.yaml",
        "a.installer",
    ] {
        assert!(!names_a_step(no), "{no} should not count as a step id");
    }
}

/// Engine files whose non-test code is scanned for step ids.
fn engine_non_test_files() -> Vec<PathBuf> {
    rust_files(&root().join("engine/src"))
        .into_iter()
        .filter(|p| {
            let r = rel(p);
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            r != "engine/src/compile/catalogue.rs"
                && r != "engine/src/invariants.rs"
                && !name.ends_with("_tests.rs")
                && name != "tests.rs"
        })
        .collect()
}

#[test]
fn step_ids_live_in_the_catalogue() {
    let mut found = Vec::new();
    let mut allowed = 0;
    for f in engine_non_test_files() {
        let r = rel(&f);
        let short = r.trim_start_matches("engine/src/");
        for lit in scan(&f).literals {
            if !names_a_step(&lit) {
                continue;
            }
            if STEP_ID_ALLOWLIST
                .iter()
                .any(|(file, l, _)| *file == short && *l == lit)
            {
                allowed += 1;
            } else {
                found.push(format!("{short}: {lit:?}"));
            }
        }
    }
    let mut per_file: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &found {
        *per_file
            .entry(f.split(':').next().unwrap_or(""))
            .or_default() += 1;
    }
    println!(
        "step-id literals outside the catalogue: {} (allowlisted: {allowed})",
        found.len()
    );
    for (file, n) in &per_file {
        println!("  {file}: {n}");
    }
    for f in &found {
        println!("  {f}");
    }
    assert!(
        found.is_empty(),
        "{} step-id literals outside compile/catalogue.rs and invariants.rs; match on the \
         step's typed operation instead, or add the literal to STEP_ID_ALLOWLIST with the \
         reason it must stay:\n  {}",
        found.len(),
        found.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// (d) engine module cycles

/// Top-level module of the engine a file belongs to, and its module path.
fn engine_module_path(p: &Path) -> Option<Vec<String>> {
    let r = rel(p);
    let inner = r.strip_prefix("engine/src/")?;
    if inner == "lib.rs" {
        return None;
    }
    let mut segs: Vec<String> = inner
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    Some(segs)
}

/// The top-level module a `crate::`/`super::` path from module `at` refers to.
fn target_module(at: &[String], path: &[String]) -> Option<String> {
    let mut base: Vec<String> = at.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.first().cloned().or_else(|| rest.first().cloned())
}

fn engine_module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let top: BTreeSet<String> = rust_files(&root().join("engine/src"))
        .iter()
        .filter_map(|p| engine_module_path(p))
        .filter_map(|m| m.first().cloned())
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> =
        top.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for f in rust_files(&root().join("engine/src")) {
        let Some(at) = engine_module_path(&f) else {
            continue;
        };
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with("_tests.rs") || name == "tests.rs" {
            continue;
        }
        for path in scan(&f).paths {
            if let Some(to) = target_module(&at, &path)
                && to != at[0]
                && top.contains(&to)
            {
                graph.entry(at[0].clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// Shortest path `from` → `to` in `graph`.
fn path_between(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([from.to_owned()]);
    let mut seen = BTreeSet::from([from.to_owned()]);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = vec![n.clone()];
            let mut cur = n;
            while let Some(p) = prev.get(&cur) {
                path.push(p.clone());
                cur = p.clone();
            }
            path.reverse();
            return Some(path);
        }
        for m in graph.get(&n).into_iter().flatten() {
            if seen.insert(m.clone()) {
                prev.insert(m.clone(), n.clone());
                queue.push_back(m.clone());
            }
        }
    }
    None
}

#[test]
fn engine_modules_import_each_other_without_cycles() {
    let graph = engine_module_graph();
    assert!(
        graph.contains_key("compile") && graph.contains_key("apply"),
        "engine modules not found: {graph:?}"
    );
    // An edge a → b is on a cycle exactly when b reaches a.
    let mut cycles = Vec::new();
    for (a, tos) in &graph {
        for b in tos {
            if let Some(back) = path_between(&graph, b, a) {
                cycles.push(format!("{a} -> {}", back.join(" -> ")));
            }
        }
    }
    println!("engine module cycles ({} edges on a cycle):", cycles.len());
    for c in &cycles {
        println!("  {c}");
    }
    assert!(
        cycles.is_empty(),
        "import cycles among engine modules:\n  {}",
        cycles.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// (e) `#[path]`

#[test]
fn no_path_attribute_includes_code() {
    let mut found = Vec::new();
    for d in [
        "src",
        "tests",
        "benches",
        "engine",
        "providers",
        "schema",
        "sim",
        "testkit",
        "fuzz",
    ] {
        for f in rust_files(&root().join(d)) {
            let n = scan(&f).path_attrs;
            if n > 0 {
                found.push((rel(&f), n));
            }
        }
    }
    let total: usize = found.iter().map(|(_, n)| n).sum();
    println!("#[path] attributes: {total}");
    for (f, n) in &found {
        println!("  {f}: {n}");
    }
    assert!(
        total == 0,
        "{total} #[path] attributes; share code through a crate:\n  {found:?}"
    );
}
