//! End-to-end tests of plan validation: the example plans are valid, every file in
//! `plans/invalid/` fails with the diagnostic its first line announces (snapshotted with insta),
//! all problems of a plan are reported in one run, secrets are never echoed, hostile input never
//! panics, and `docs/plan-format.md` mentions every property of the schema.
//!
//! Owns the contract of `swing validate` as users see it. Must not: reach the network or need
//! any secret (validation needs none).

use std::path::{Path, PathBuf};
use std::process::Command;

use swing_engine::validate::{Checked, check_file, check_paths, check_source};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn codes(c: &Checked) -> Vec<&'static str> {
    c.diagnostics.iter().map(|d| d.code).collect()
}

fn plain(c: &Checked) -> String {
    c.diagnostics.iter().map(|d| d.to_plain()).collect()
}

/// Checks a file under its repository-relative name, so snapshots do not hold absolute paths.
fn check_repo_file(path: &Path) -> Checked {
    let rel = path
        .strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string();
    let text = std::fs::read_to_string(path).expect("read plan");
    check_source(&rel, &text)
}

const BASE: &str = include_str!("../plans/examples/failover-async-dns.yaml");

#[test]
fn example_plans_are_valid_without_warnings() {
    let results = check_paths(&[root().join("plans/examples")]);
    assert_eq!(results.len(), 8, "eight example plans, one per scenario");
    for c in &results {
        assert!(
            c.diagnostics.is_empty(),
            "{} should be clean:\n{}",
            c.origin,
            plain(c)
        );
        assert!(c.plan.is_some(), "{}", c.origin);
        let first = std::fs::read_to_string(&c.origin).expect("read example");
        assert!(
            first.starts_with("# yaml-language-server: $schema=../../schema/plan.schema.json"),
            "{} lacks the schema modeline",
            c.origin
        );
    }
}

#[test]
fn invalid_plans_snapshot() {
    insta::glob!("../plans/invalid", "*.yaml", |path| {
        let c = check_repo_file(path);
        assert!(c.has_errors(), "{} must be invalid", path.display());
        assert!(c.plan.is_none());
        insta::assert_snapshot!(plain(&c));
    });
}

#[test]
fn invalid_plans_fail_at_the_announced_line_and_column() {
    let dir = root().join("plans/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("plans/invalid")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "at least 30 invalid plans, found {}",
        files.len()
    );
    let mut seen_codes = std::collections::BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks `# expect: LINE:COL CODE`", f.display()));
        let (pos, code) = expect.split_once(' ').expect("LINE:COL CODE");
        let c = check_file(f);
        let first = c
            .diagnostics
            .iter()
            .find(|d| d.severity == swing_engine::diagnostics::Severity::Error)
            .unwrap_or_else(|| panic!("{}: no error", f.display()));
        assert_eq!(
            (format!("{}:{}", first.line, first.column), first.code),
            (pos.to_owned(), code.trim()),
            "{}: first error was: {}",
            f.display(),
            first.message
        );
        seen_codes.insert(first.code);
    }
    assert!(
        seen_codes.len() >= 30,
        "the invalid plans cover at least 30 problem classes, got {}",
        seen_codes.len()
    );
}

#[test]
fn five_different_errors_are_reported_in_one_run() {
    let text = BASE
        .replace(
            "site: access.example.com",
            "site: access.example.com\nsitee: x",
        ) // unknown key
        .replace("version: \"25.1.3\"", "version: \"25.1-rc\"") // bad version
        .replace(
            "password: ${env:SWING_BACKUP_PASSWORD}",
            "password: Winter2026",
        ) // literal secret
        .replace(
            "east: { address: 10.0.0.11,",
            "east: { address: 10.0.0.11, port: many,",
        ) // wrong type
        .replace(
            "  strategy: asynchronous\n",
            "  strategy: asynchronous\n  strategy: synchronous\n",
        ); // duplicate key
    let c = check_source("five.yaml", &text);
    let mut got = codes(&c);
    got.sort();
    got.dedup();
    assert_eq!(
        got,
        vec![
            "duplicate-key",
            "invalid-target-version",
            "literal-secret",
            "unknown-key",
            "wrong-type"
        ],
        "{}",
        plain(&c)
    );
}

#[test]
fn five_semantic_errors_are_reported_in_one_run() {
    let text = BASE
        .replace("  backup: west\n", "  backup: east\n") // primary == backup
        .replace("provider: corp-dns, record", "provider: corp-dnz, record") // unknown provider
        .replace(
            "end: 2026-12-06T02:00:00+01:00",
            "end: 2026-12-05T21:00:00+01:00",
        ) // window end before start
        .replace("west: { address: 10.0.0.12,", "west: { address: 10.0.0.11,") // duplicate address
        .replace(
            "    client_secret: ${env:BT_CLIENT_SECRET}\n",
            "    client_secret: ${env:BT_CLIENT_SECRET}\n    operator: exec\n",
        ); // exec without command
    let c = check_source("five-semantic.yaml", &text);
    let mut got = codes(&c);
    got.sort();
    assert_eq!(
        got,
        vec![
            "duplicate-address",
            "operator-command",
            "primary-equals-backup",
            "unknown-provider",
            "window-end-not-after-start"
        ],
        "{}",
        plain(&c)
    );
}

#[test]
fn warnings_keep_the_plan() {
    let one_window = BASE.replace(
        "  - { name: second, start: 2026-12-12T22:00:00+01:00, end: 2026-12-13T02:00:00+01:00 }\n",
        "",
    );
    let c = check_source("one-window.yaml", &one_window);
    assert_eq!(codes(&c), vec!["asynchronous-with-one-window"]);
    assert!(!c.has_errors());
    assert!(c.plan.is_some());

    let manual = include_str!("../plans/examples/single-manual.yaml");
    let start = manual.find("windows:").expect("windows");
    let end = manual[start..].find("\n\n").expect("blank line") + start + 2;
    let no_windows = format!("{}{}", &manual[..start], &manual[end..]);
    let c = check_source("manual.yaml", &no_windows);
    assert_eq!(codes(&c), vec!["manual-without-windows"], "{}", plain(&c));
    assert!(c.plan.is_some());
}

#[test]
fn a_nat_switch_takes_an_iptables_provider_with_the_fields_it_knows() {
    let nat = include_str!("../plans/examples/failover-async-nat.yaml");
    let nft = "    type: nftables\n    table: swing\n    chain: prerouting\n";
    assert!(nat.contains(nft), "the example's provider changed");
    let ipt = nat.replace(nft, "    type: iptables\n    chain: PREROUTING\n");
    let c = check_source("iptables.yaml", &ipt);
    assert!(!c.has_errors(), "{}", plain(&c));
    let plan = c.plan.expect("valid");
    match &plan.providers["edge"] {
        swing_schema::Provider::Iptables(p) => {
            assert_eq!((p.table.as_str(), p.chain.as_str()), ("nat", "PREROUTING"));
            assert_eq!(p.netns.as_deref(), Some("edge"));
        }
        other => panic!("edge is {other:?}"),
    }
    // `family` belongs to nftables: an unknown field of an iptables provider is an error.
    let c = check_source(
        "iptables-family.yaml",
        &nat.replace(
            nft,
            "    type: iptables\n    chain: PREROUTING\n    family: ip\n",
        ),
    );
    assert!(c.has_errors(), "{}", plain(&c));
    assert!(plain(&c).contains("family"), "{}", plain(&c));
}

#[test]
fn unquoted_versions_are_text() {
    let text = BASE.replace("version: \"25.1.3\"", "version: 25.1");
    let c = check_source("unquoted.yaml", &text);
    assert!(c.diagnostics.is_empty(), "{}", plain(&c));
    let plan = c.plan.expect("plan");
    assert_eq!(plan.target.version.as_str(), "25.1");
}

#[test]
fn literal_secrets_are_never_echoed() {
    let secret = "Hunter2-Very-Secret";
    let plans = [
        BASE.replace(
            "password: ${env:SWING_BACKUP_PASSWORD}",
            &format!("password: {secret}"),
        ),
        BASE.replace(
            "secret: \"${env:SWING_TSIG_SECRET}\"",
            &format!("secret: \"{secret}\""),
        ),
        BASE.replace(
            "client_secret: ${env:BT_CLIENT_SECRET}",
            &format!("client_secret: [{secret}]"),
        ),
        BASE.replace(
            "client_secret: ${env:BT_CLIENT_SECRET}",
            &format!("client_secret: ${{vault:{secret}}}"),
        ),
        BASE.replace(
            "password: ${env:SWING_BACKUP_PASSWORD}",
            &format!("password: ${{env:X}}\n  pasword: {secret}"),
        ),
    ];
    for text in plans {
        let c = check_source("secret.yaml", &text);
        assert!(c.has_errors());
        for d in &c.diagnostics {
            let json = serde_json::to_string(d).expect("json");
            let graphical = {
                let mut s = String::new();
                miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::none())
                    .render_report(&mut s, d)
                    .expect("render");
                // The report quotes the source line: it must show the secret masked.
                s
            };
            for (what, out) in [
                ("message", d.message.clone()),
                ("json", json),
                ("plain report", d.to_plain()),
                ("graphical report", graphical.clone()),
            ] {
                assert!(!out.contains(secret), "{what} echoes the secret: {out}");
            }
            for l in &d.labels {
                assert!(!l.text.contains(secret));
            }
            if let Some(h) = &d.help {
                assert!(!h.contains(secret));
            }
            assert!(!graphical.is_empty());
        }
    }
}

/// A small deterministic generator (xorshift) so the garbage is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn check_bytes(bytes: &[u8]) -> Checked {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("plan.yaml");
    std::fs::write(&p, bytes).expect("write");
    check_file(&p)
}

#[test]
fn hostile_input_never_panics_and_always_explains() {
    let mut inputs: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\0\0\0\xff\xfe".to_vec(),
        b"\xef\xbb\xbfversion: 1".to_vec(),
        b"[[[[[[[[".to_vec(),
        b"{a: 1, a: 2}".to_vec(),
        b"? [a, b]\n: c\n".to_vec(),
        b"&a [*a]".to_vec(),
        b"*unknown".to_vec(),
        b"- - - - -".to_vec(),
        b"version: 1\n---\nversion: 1\n---\n".to_vec(),
        b"\"unterminated".to_vec(),
        b"\t\tversion: 1".to_vec(),
        "v\u{e9}rsion: ✓\nname: \u{1F600}\n".as_bytes().to_vec(),
        "{".repeat(10_000).into_bytes(),
        "- ".repeat(5_000).into_bytes(),
        b"!!binary AAAA".to_vec(),
        b"version: !!int x".to_vec(),
    ];
    const POOL: &[u8] = b"{}[]:,-&*!|>'\"#%@` \n\tab1";
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..300 {
        let len = (rng.next() % 200) as usize;
        inputs.push((0..len).map(|_| rng.next() as u8).collect());
    }
    // Mutations of a valid plan: byte flips, truncation, deletions.
    for _ in 0..300 {
        let mut b = BASE.as_bytes().to_vec();
        match rng.next() % 3 {
            0 => {
                for _ in 0..1 + rng.next() % 4 {
                    let i = (rng.next() as usize) % b.len();
                    b[i] = POOL[(rng.next() % POOL.len() as u64) as usize];
                }
            }
            1 => b.truncate((rng.next() as usize) % b.len()),
            _ => {
                let i = (rng.next() as usize) % b.len();
                let n = ((rng.next() as usize) % 40).min(b.len() - i);
                b.drain(i..i + n);
            }
        }
        inputs.push(b);
    }
    for input in &inputs {
        let c = check_bytes(input);
        for d in &c.diagnostics {
            assert!(!d.message.is_empty());
            // Every diagnostic but whole-file ones has a 1-based position inside the file.
            if !d.labels.is_empty() {
                assert!(d.line >= 1 && d.column >= 1, "{d:?}");
            }
            // Rendering never fails either.
            let _ = d.to_plain();
        }
        if c.plan.is_none() {
            assert!(c.has_errors(), "no plan but no error for {input:?}");
        }
    }
}

#[test]
fn oversized_file_is_refused_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("big.yaml");
    let line = "# padding padding padding padding padding padding padding padding\n";
    let text = line.repeat((10 * 1024 * 1024) / line.len() + 2);
    std::fs::write(&p, text).expect("write");
    let c = check_file(&p);
    assert_eq!(codes(&c), vec!["file-too-large"]);
}

#[test]
fn missing_file_is_a_diagnostic() {
    let c = check_file(Path::new("/nonexistent/swing/plan.yaml"));
    assert_eq!(codes(&c), vec!["io"]);
    assert!(
        c.diagnostics[0]
            .message
            .contains("/nonexistent/swing/plan.yaml")
    );
}

fn swing(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_swing"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run swing")
}

#[test]
fn cli_validate_exit_codes_and_json() {
    let ok = swing(&["validate", "plans/examples"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let mut args = vec!["validate".to_owned(), "--format".into(), "json".into()];
    let mut files: Vec<String> = std::fs::read_dir(root().join("plans/invalid"))
        .expect("dir")
        .map(|e| {
            format!(
                "plans/invalid/{}",
                e.expect("entry").file_name().to_string_lossy()
            )
        })
        .collect();
    files.sort();
    args.extend(files.iter().cloned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let bad = swing(&argv);
    assert_eq!(bad.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&bad.stdout).expect("json output");
    assert_eq!(doc["valid"], false);
    let out_files = doc["files"].as_array().expect("files");
    assert_eq!(out_files.len(), files.len(), "every file is reported");
    for f in out_files {
        assert_eq!(f["valid"], false);
        let d = &f["diagnostics"][0];
        for key in ["file", "line", "column", "code", "severity", "message"] {
            assert!(!d[key].is_null(), "diagnostic lacks {key}: {d}");
        }
    }

    let plain = swing(&[
        "validate",
        "--format",
        "plain",
        "plans/invalid/primary-equals-backup.yaml",
    ]);
    assert_eq!(plain.status.code(), Some(1));
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(
        text.starts_with(
            "plans/invalid/primary-equals-backup.yaml:17:11: error[primary-equals-backup]"
        ),
        "{text}"
    );

    let human = swing(&["validate", "plans/invalid/primary-equals-backup.yaml"]);
    assert_eq!(human.status.code(), Some(1));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("swing::primary-equals-backup"), "{text}");
    assert!(
        !text.contains("\u{1b}["),
        "no colour when not on a terminal"
    );

    let none = swing(&["validate", "plans/no-such-dir-for-test"]);
    assert_eq!(none.status.code(), Some(1));
}

#[test]
fn cli_schema_prints_the_committed_schema() {
    let out = swing(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let committed =
        std::fs::read_to_string(root().join("schema/plan.schema.json")).expect("schema");
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

/// Every property name of the schema appears in the reference, so docs cannot drift silently.
#[test]
fn plan_format_reference_mentions_every_property() {
    let doc =
        std::fs::read_to_string(root().join("docs/plan-format.md")).expect("docs/plan-format.md");
    let schema = swing_schema::plan_schema();
    let mut names = std::collections::BTreeSet::new();
    fn walk(v: &serde_json::Value, names: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                    names.extend(props.keys().cloned());
                }
                m.values().for_each(|x| walk(x, names));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, names)),
            _ => {}
        }
    }
    walk(&schema, &mut names);
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/plan-format.md does not mention (as `name`): {missing:?}"
    );
}

/// saphyr counts characters, miette wants bytes: columns after non-ASCII text must still be
/// right, and the label must underline exactly the key.
#[test]
fn columns_are_counted_in_characters_after_non_ascii_text() {
    let text = BASE.replace(
        "backup:\n",
        "verify: { manual: [\"Prüfung ✓ — Zugriff über Konsole\"], extra: 1 }\n\nbackup:\n",
    );
    let c = check_source("unicode.yaml", &text);
    assert_eq!(codes(&c), vec!["unknown-key"], "{}", plain(&c));
    let d = &c.diagnostics[0];
    let (line_no, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("extra"))
        .expect("line");
    let byte = line.find("extra").expect("extra");
    assert_eq!(d.line, line_no + 1);
    assert_eq!(d.column, line[..byte].chars().count() + 1);
    let span = d.labels[0].span;
    assert_eq!(&text[span.start..span.end], "extra");
}

/// `plan-format.md` (December 2026): a window's `name` is optional; unnamed windows are
/// `window-N` by their place in the plan, and the names reach what every later step reads.
#[test]
fn windows_without_a_name_are_named_by_their_place() {
    let text = BASE
        .replace("  - { name: first, start:", "  - { start:")
        .replace("  - { name: second, start:", "  - { start:");
    assert_ne!(text, BASE, "the example's windows were found");
    let c = check_source("unnamed.yaml", &text);
    assert!(c.diagnostics.is_empty(), "{}", plain(&c));
    let plan = c.plan.expect("valid");
    let names: Vec<&str> = plan.windows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["window-1", "window-2"]);
    // One named and one not: the unnamed one still takes its place's name.
    let mixed = BASE.replace("  - { name: second, start:", "  - { start:");
    let c = check_source("mixed.yaml", &mixed);
    let plan = c.plan.expect("valid");
    let names: Vec<&str> = plan.windows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["first", "window-2"]);
}

/// `notify` (December 2026): a webhook in plain http beyond this host, an unparsable URL, an
/// empty `events` and an event named twice are refused, each pointed at the node that is
/// wrong; https anywhere, http to loopback, a URL reference and an `exec` target are accepted.
#[test]
fn notify_targets_are_checked_where_they_are_written() {
    let with = |notify: &str| format!("{BASE}\nnotify:\n{notify}");
    let ok = with(
        "  - { type: webhook, url: 'https://hooks.example.com/swing', secret: '${env:SWING_HOOK_SECRET}', format: text }\n  \
         - { type: webhook, url: 'http://127.0.0.1:8080/hook', events: [done] }\n  \
         - { type: webhook, url: '${env:SWING_HOOK_URL}' }\n  \
         - { type: exec, command: ./notify.sh }\n",
    );
    let c = check_source("ok.yaml", &ok);
    assert!(c.diagnostics.is_empty(), "{}", plain(&c));
    let plan = c.plan.expect("valid");
    assert_eq!(plan.notify.len(), 4);
    assert_eq!(plan.notify[3].events().len(), 4, "the default is all four");

    let text = with("  - type: webhook\n    url: http://hooks.example.com/swing\n");
    let c = check_source("http.yaml", &text);
    assert_eq!(codes(&c), ["invalid-notify-url"], "{}", plain(&c));
    let d = &c.diagnostics[0];
    let span = d.labels[0].span;
    assert_eq!(
        &text[span.start..span.end],
        "http://hooks.example.com/swing"
    );
    assert!(
        d.message.contains("not a loopback address"),
        "{}",
        d.message
    );
    assert!(d.help.as_deref().unwrap_or_default().contains("https"));

    let c = check_source(
        "bad.yaml",
        &with("  - { type: webhook, url: 'hooks.example.com' }\n"),
    );
    assert_eq!(codes(&c), ["invalid-notify-url"], "{}", plain(&c));

    let text = with("  - { type: exec, command: ./n.sh, events: [done, failed, done] }\n");
    let c = check_source("dup.yaml", &text);
    assert_eq!(codes(&c), ["invalid-notify-events"], "{}", plain(&c));
    let span = c.diagnostics[0].labels[0].span;
    assert_eq!(span.start, text.rfind("done").unwrap());

    let c = check_source(
        "none.yaml",
        &with("  - { type: exec, command: ./n.sh, events: [] }\n"),
    );
    assert_eq!(codes(&c), ["invalid-notify-events"], "{}", plain(&c));

    // The signing key is a secret: a literal one is refused like any other.
    let c = check_source(
        "lit.yaml",
        &with("  - { type: webhook, url: 'https://h.example.com/', secret: hunter2 }\n"),
    );
    assert!(c.plan.is_none(), "{}", plain(&c));
    assert!(!plain(&c).contains("hunter2"), "{}", plain(&c));
}
