//! The editor schema (`schema/plan.schema.json`, `swing schema`) checked by a validator editors
//! and CI use, check-jsonschema (PyPI, pinned in `swing_testkit::tools`), against `swing
//! validate`: both accept every example plan; both refuse every invalid plan whose rule JSON
//! Schema can state; for every other invalid plan this file says why the schema cannot.
//!
//! Owns the agreement between the editor schema and swing as lists over `plans/invalid/`
//! ([`SCHEMA_REFUSES`], [`SCHEMA_CANNOT_EXPRESS`], [`LOADER_LIMITS`]): a new invalid plan in
//! none of them fails, and so does a listed one whose verdict changed. Must not: judge swing's diagnostics (that is
//! `tests/validate.rs`), or run check-jsonschema on anything but plans (it is slow to start, so
//! every check runs it once over many files).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How check-jsonschema refuses a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The plan parses and breaks a rule of the schema.
    Schema,
    /// The file is not one YAML document check-jsonschema can load (it refuses it before the
    /// schema is consulted, as swing does).
    Parse,
}

/// The invalid plans the editor schema refuses, and how.
const SCHEMA_REFUSES: &[(&str, Refusal)] = &[
    ("appliances-as-list.yaml", Refusal::Schema),
    ("asynchronous-without-switch.yaml", Refusal::Schema),
    ("custom-yaml-tag.yaml", Refusal::Parse),
    ("dns-server-without-port.yaml", Refusal::Schema),
    ("dns-switch-without-record.yaml", Refusal::Schema),
    ("duplicate-key.yaml", Refusal::Parse),
    ("duration-with-words.yaml", Refusal::Schema),
    // An empty document is `null`, not a mapping.
    ("empty-file.yaml", Refusal::Schema),
    ("failover-and-migration.yaml", Refusal::Schema),
    ("failover-missing-backup.yaml", Refusal::Schema),
    ("failover-with-one-appliance.yaml", Refusal::Schema),
    ("final-primary-on-synchronous.yaml", Refusal::Schema),
    ("format-version-2.yaml", Refusal::Schema),
    ("invalid-appliance-name.yaml", Refusal::Schema),
    ("invalid-change-name.yaml", Refusal::Schema),
    // Literal secrets: a secret field takes only `${env:…}` / `${file:…}` (a pattern).
    ("literal-backup-password.yaml", Refusal::Schema),
    ("literal-client-secret.yaml", Refusal::Schema),
    ("literal-tsig-secret.yaml", Refusal::Schema),
    ("missing-site.yaml", Refusal::Schema),
    ("multiple-documents.yaml", Refusal::Parse),
    ("nat-switch-without-public.yaml", Refusal::Schema),
    // Swing refuses it while loading (depth limit); to the schema the value is a list, not text.
    ("nesting-too-deep.yaml", Refusal::Schema),
    ("online-ratio-above-one.yaml", Refusal::Schema),
    ("operator-exec-without-command.yaml", Refusal::Schema),
    ("plan-is-a-list.yaml", Refusal::Schema),
    ("port-not-a-number.yaml", Refusal::Schema),
    ("provider-without-type.yaml", Refusal::Schema),
    ("secret-reference-unknown-scheme.yaml", Refusal::Schema),
    ("shared-ip-without-address.yaml", Refusal::Schema),
    ("site-is-a-url.yaml", Refusal::Schema),
    ("target-version-not-dotted.yaml", Refusal::Schema),
    ("three-appliances.yaml", Refusal::Schema),
    ("two-appliances-without-failover.yaml", Refusal::Schema),
    ("unknown-appliance-key.yaml", Refusal::Schema),
    ("unknown-provider-type.yaml", Refusal::Schema),
    ("unknown-switch-method.yaml", Refusal::Schema),
    ("unknown-top-level-key.yaml", Refusal::Schema),
    ("window-without-offset.yaml", Refusal::Schema),
    ("yaml-syntax-error.yaml", Refusal::Parse),
];

/// The invalid plans whose rule JSON Schema cannot state, and why: it compares no two values
/// (no "equal to that field", "later than that field", "a key of that mapping"), so only
/// `swing validate` refuses these.
const SCHEMA_CANNOT_EXPRESS: &[(&str, &str)] = &[
    (
        "appliance-provider-not-defined.yaml",
        "an appliance's `provider` must be a key of `providers`: a value checked against another mapping's keys",
    ),
    (
        "backup-names-no-appliance.yaml",
        "`failover.backup` must be a key of `appliances`: a value checked against another mapping's keys",
    ),
    (
        "dns-switch-through-nftables.yaml",
        "the provider a DNS switch names must be of type rfc2136: the `type` of the entry another value names",
    ),
    (
        "downgrade.yaml",
        "`current_version` must not be newer than `target.version`: two versions compared numerically",
    ),
    (
        "duplicate-appliance-address.yaml",
        "appliance addresses must differ: values of different entries compared",
    ),
    (
        "migration-onto-itself.yaml",
        "`migration.to` must differ from `migration.from`: two values compared",
    ),
    (
        "primary-equals-backup.yaml",
        "`failover.backup` must differ from `failover.primary`: two values compared",
    ),
    (
        "switch-provider-not-defined.yaml",
        "a switch's `provider` must be a key of `providers`: a value checked against another mapping's keys",
    ),
    (
        "window-ends-before-start.yaml",
        "a window's `end` must be later than its `start`: two timestamps compared",
    ),
    (
        "windows-overlap.yaml",
        "windows must not overlap: timestamps of different entries compared",
    ),
];

/// Invalid plans refused while loading the YAML text, by a limit no schema of the loaded data
/// can state; check-jsonschema is not run on them (only swing is).
const LOADER_LIMITS: &[(&str, &str)] = &[(
    "alias-bomb.yaml",
    "a limit on alias expansion is about the YAML text; check-jsonschema expands the aliases \
     (half a minute of CPU) and then refuses the result only for its unknown keys",
)];

/// What check-jsonschema said about a set of files.
#[derive(Debug, Default)]
struct Verdicts {
    /// File → its schema errors (`path: message`, best deep match included).
    schema_errors: BTreeMap<String, Vec<String>>,
    /// Files it could not parse.
    parse_errors: BTreeSet<String>,
}

impl Verdicts {
    fn passes(&self, f: &str) -> bool {
        !self.schema_errors.contains_key(f) && !self.parse_errors.contains(f)
    }
}

/// Writes the editor schema the types generate (the committed file equals it: schema_drift).
fn editor_schema_file(dir: &Path) -> PathBuf {
    let path = dir.join("plan.schema.json");
    std::fs::write(&path, swing_schema::editor_schema_pretty()).expect("write schema");
    path
}

/// Runs check-jsonschema once over `files` (paths as given are the keys of the verdicts).
fn check_jsonschema(schema: &Path, files: &[String]) -> Verdicts {
    let out = swing_testkit::tools::python_tool("check_jsonschema")
        .current_dir(root())
        .arg("--schemafile")
        .arg(schema)
        .args(["--output-format", "json", "--color", "never"])
        .args(files)
        .output()
        .expect("run check-jsonschema");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "check-jsonschema printed no JSON report ({e}); exit {:?}\n{stdout}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut v = Verdicts::default();
    for e in report["errors"].as_array().into_iter().flatten() {
        let file = e["filename"].as_str().unwrap_or_default().to_owned();
        let line = |x: &serde_json::Value| {
            format!(
                "{}: {}",
                x["path"].as_str().unwrap_or_default(),
                x["message"].as_str().unwrap_or_default()
            )
        };
        let mut lines = vec![line(e)];
        lines.extend(e.get("best_deep_match").map(line));
        v.schema_errors.entry(file).or_default().extend(lines);
    }
    for e in report["parse_errors"].as_array().into_iter().flatten() {
        v.parse_errors
            .insert(e["filename"].as_str().unwrap_or_default().to_owned());
    }
    // Exit 0: all passed; 1: some failed (schema or parse). Anything else is the tool failing.
    let failed = !v.schema_errors.is_empty() || !v.parse_errors.is_empty();
    assert_eq!(
        out.status.code(),
        Some(i32::from(failed)),
        "check-jsonschema exit code vs its report: {stdout}"
    );
    assert_eq!(report["status"], if failed { "fail" } else { "ok" });
    for f in v.schema_errors.keys().chain(&v.parse_errors) {
        assert!(files.contains(f), "report names a file not checked: {f}");
    }
    v
}

fn swing_validate(file: &Path) -> Option<i32> {
    Command::new(env!("CARGO_BIN_EXE_swing"))
        .current_dir(root())
        .arg("validate")
        .arg(file)
        .output()
        .expect("run swing validate")
        .status
        .code()
}

fn yaml_files(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join(dir))
        .expect("plans dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    v.sort();
    v
}

#[test]
fn check_jsonschema_agrees_with_swing_validate_on_every_example_and_invalid_plan() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let schema = editor_schema_file(tmp.path());
    let examples = yaml_files("plans/examples");
    let invalid = yaml_files("plans/invalid");
    assert!(
        examples.len() >= 8 && invalid.len() >= 50,
        "{examples:?} {invalid:?}"
    );
    let loader: BTreeMap<&str, &str> = LOADER_LIMITS.iter().copied().collect();
    let all: Vec<String> = examples
        .iter()
        .chain(&invalid)
        .filter(|f| !loader.contains_key(f.trim_start_matches("plans/invalid/")))
        .cloned()
        .collect();
    let v = check_jsonschema(&schema, &all);

    let mut problems = Vec::new();
    for f in &examples {
        if !v.passes(f) {
            problems.push(format!(
                "example {f} fails the editor schema: {:?}",
                v.schema_errors.get(f)
            ));
        }
        if swing_validate(Path::new(f)) != Some(0) {
            problems.push(format!("example {f}: swing validate does not pass it"));
        }
    }

    let refuses: BTreeMap<&str, Refusal> = SCHEMA_REFUSES.iter().copied().collect();
    let cannot: BTreeMap<&str, &str> = SCHEMA_CANNOT_EXPRESS.iter().copied().collect();
    for name in cannot.keys().chain(loader.keys()) {
        assert!(!refuses.contains_key(name), "{name} is in two lists");
    }
    for name in loader.keys() {
        assert!(!cannot.contains_key(name), "{name} is in two lists");
    }
    let on_disk: BTreeSet<String> = invalid
        .iter()
        .map(|f| f.trim_start_matches("plans/invalid/").to_owned())
        .collect();
    for name in refuses.keys().chain(cannot.keys()).chain(loader.keys()) {
        if !on_disk.contains(*name) {
            problems.push(format!("listed {name} is not in plans/invalid/"));
        }
    }
    for f in &invalid {
        let name = f.trim_start_matches("plans/invalid/");
        if swing_validate(Path::new(f)) != Some(1) {
            problems.push(format!("{f}: swing validate does not refuse it (exit 1)"));
        }
        if loader.contains_key(name) {
            continue;
        }
        let parsed = !v.parse_errors.contains(f);
        let schema_refused = v.schema_errors.contains_key(f);
        match (refuses.get(name), cannot.get(name)) {
            (Some(Refusal::Parse), _) if parsed => problems.push(format!(
                "{f}: listed as failing at YAML parsing, but check-jsonschema parsed it ({})",
                if schema_refused {
                    "and refused it by the schema"
                } else {
                    "and passed it"
                }
            )),
            (Some(Refusal::Schema), _) if !parsed => problems.push(format!(
                "{f}: listed as refused by the schema, but check-jsonschema could not parse it"
            )),
            (Some(Refusal::Schema), _) if !schema_refused => problems.push(format!(
                "{f}: the editor schema must refuse it, but check-jsonschema passes it"
            )),
            (Some(_), _) => {}
            (None, Some(why)) if !v.passes(f) => problems.push(format!(
                "{f}: listed as beyond JSON Schema ({why}), but check-jsonschema refuses it now: \
                 move it to SCHEMA_REFUSES — {:?}",
                v.schema_errors.get(f)
            )),
            (None, Some(_)) => {}
            (None, None) => problems.push(format!(
                "{f}: in none of SCHEMA_REFUSES, SCHEMA_CANNOT_EXPRESS, LOADER_LIMITS; check-jsonschema {}",
                if v.passes(f) {
                    "passes it"
                } else {
                    "refuses it"
                }
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A DNS switch without `record`: the schema's error names `record` at the switch, not
/// "another method was expected" (tagged unions are one `if`/`then` per tag, not `oneOf`).
#[test]
fn a_dns_switch_without_record_is_told_it_misses_record() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let schema = editor_schema_file(tmp.path());
    let f = "plans/invalid/dns-switch-without-record.yaml".to_owned();
    let v = check_jsonschema(&schema, std::slice::from_ref(&f));
    let errors = v.schema_errors.get(&f).expect("refused by the schema");
    assert!(
        errors.iter().any(|e| e.starts_with("$.failover.switch: ")
            && e.contains("'record' is a required property")),
        "{errors:#?}"
    );
    assert!(
        !errors.iter().any(|e| e.contains("was expected")),
        "no other variant is proposed: {errors:#?}"
    );
}

/// `target.version` written as a number: swing reads it as the text written; the schema takes
/// a number that is not whole. Both agree on every case but the documented one.
#[test]
fn an_unquoted_version_is_judged_alike_by_schema_and_swing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let schema = editor_schema_file(tmp.path());
    let base = std::fs::read_to_string(root().join("plans/examples/single-automatic.yaml"))
        .expect("example");
    assert!(base.contains("  version: \"25.1.3\"\n"), "example changed");
    // (as written, swing accepts, the schema accepts)
    let cases: &[(&str, bool, bool)] = &[
        ("25.1", true, true),
        ("25.10", true, true),
        ("\"25.1.3\"", true, true),
        ("25.1.3", true, true),
        ("25", false, false),
        ("\"25\"", false, false),
        ("-25.1", false, false),
        ("25.1-beta", false, false),
        // docs/plan-format.md: a whole number written with `.0` must be quoted for editors:
        // swing reads "25.0", a validator sees the number 25.
        ("25.0", true, false),
    ];
    let mut files = Vec::new();
    for (i, (written, _, _)) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("v{i}.yaml"));
        let text = base.replace(
            "  version: \"25.1.3\"\n",
            &format!("  version: {written}\n"),
        );
        std::fs::write(&path, text).expect("write plan");
        files.push(path.to_string_lossy().into_owned());
    }
    let v = check_jsonschema(&schema, &files);
    let mut problems = Vec::new();
    for ((written, swing_ok, schema_ok), f) in cases.iter().zip(&files) {
        let swing = swing_validate(Path::new(f)) == Some(0);
        let by_schema = v.passes(f);
        if swing != *swing_ok || by_schema != *schema_ok {
            problems.push(format!(
                "version: {written}: swing {swing} (want {swing_ok}), schema {by_schema} (want {schema_ok}) {:?}",
                v.schema_errors.get(f)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
