//! Bad input through the real `swing` binary: plan paths that are directories, unreadable,
//! binary garbage, 100 MB or empty, and command lines that make no sense. Each must end with
//! the documented exit code (1 = error, docs/plan-format.md), a message naming the cause,
//! and never a panic.
//!
//! Owns: these refusal checks only. Must not: reach the network, write outside its temp
//! dirs, or wait for a hung child without a deadline (every run is killed after 60 s).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXAMPLE: &str = "plans/examples/single-automatic.yaml";

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn explain(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Exit code `code`, no panic, and `needle` (case-insensitive) in stdout or stderr.
    fn assert_refused(&self, code: i32, needle: &str) {
        assert_eq!(self.code, Some(code), "{}", self.explain());
        assert!(!self.stderr.contains("panicked"), "{}", self.explain());
        assert!(!self.stdout.contains("panicked"), "{}", self.explain());
        let all = format!("{}\n{}", self.stdout, self.stderr).to_lowercase();
        assert!(
            all.contains(&needle.to_lowercase()),
            "expected {needle:?} in the output\n{}",
            self.explain()
        );
    }
}

/// Runs `swing ARGS` in `cwd` with output captured in files (no pipe can fill up); kills it
/// after 60 s (a hang fails the test instead of blocking the suite).
fn swing_in(cwd: &Path, args: &[&str]) -> Run {
    let out = tempfile::tempdir().unwrap();
    let so = out.path().join("stdout");
    let se = out.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_swing"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&so).unwrap())
        .stderr(std::fs::File::create(&se).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "swing {args:?} still running after 60 s (hang)\n{}",
                std::fs::read_to_string(&se).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&std::fs::read(&so).unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&std::fs::read(&se).unwrap()).into_owned(),
    }
}

fn swing(args: &[&str]) -> Run {
    swing_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// The commands that take a plan file, with the arguments that keep them offline.
fn plan_commands(path: &str) -> Vec<Vec<String>> {
    let p = path.to_string();
    vec![
        vec!["validate".into(), p.clone()],
        vec![
            "validate".into(),
            p.clone(),
            "--format".into(),
            "json".into(),
        ],
        vec!["plan".into(), p.clone(), "--offline".into()],
        vec!["graph".into(), p.clone()],
        vec!["show".into(), p.clone()],
        vec![
            "apply".into(),
            p.clone(),
            "--state-dir".into(),
            "state".into(),
        ],
    ]
}

fn each_command_refuses(dir: &Path, path: &str, needle_for: impl Fn(&str) -> &'static str) {
    for args in plan_commands(path) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = swing_in(dir, &a);
        // apply summarises and points at `swing validate`; the others name the cause.
        let needle = if a[0] == "apply" {
            "not a valid plan"
        } else {
            needle_for(a[0])
        };
        assert_refused_or_explain(&r, &a, needle);
    }
}

fn assert_refused_or_explain(r: &Run, args: &[&str], needle: &str) {
    assert_eq!(r.code, Some(1), "swing {args:?}\n{}", r.explain());
    assert!(
        !r.stderr.contains("panicked") && !r.stdout.contains("panicked"),
        "swing {args:?}\n{}",
        r.explain()
    );
    let all = format!("{}\n{}", r.stdout, r.stderr).to_lowercase();
    assert!(
        all.contains(&needle.to_lowercase()),
        "swing {args:?}: expected {needle:?}\n{}",
        r.explain()
    );
}

#[test]
fn a_directory_without_plans_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("empty/notes.txt"), "not a plan").unwrap();
    swing_in(dir.path(), &["validate", "empty"]).assert_refused(1, "no plan files");
    swing_in(dir.path(), &["plan", "empty", "--offline"]).assert_refused(1, "no plan files");
    // Commands taking ONE file say it is a directory.
    for cmd in ["graph", "show"] {
        swing_in(dir.path(), &[cmd, "empty"]).assert_refused(1, "is a directory");
    }
    swing_in(dir.path(), &["apply", "empty", "--state-dir", "state"])
        .assert_refused(1, "not a valid plan");
}

#[test]
fn an_unreadable_path_is_refused() {
    // We may run as root, where mode 000 does not stop a read: a path THROUGH a regular
    // file (ENOTDIR) and a dangling symlink (ENOENT) are unreadable for everyone.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("afile"), "x").unwrap();
    std::os::unix::fs::symlink("/nonexistent/swing/plan.yaml", dir.path().join("gone.yaml"))
        .unwrap();
    each_command_refuses(dir.path(), "afile/plan.yaml", |_| "not a directory");
    each_command_refuses(dir.path(), "gone.yaml", |_| "no such file");
    // Missing outright.
    each_command_refuses(dir.path(), "missing.yaml", |_| "no such file");
}

#[test]
fn a_fifo_is_refused_without_hanging() {
    // Opening a FIFO for reading blocks until a writer appears: every command must look at the
    // file type first and refuse it, never wait.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("plan.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    each_command_refuses(dir.path(), "plan.yaml", |_| "not a regular file");
}

#[test]
fn binary_garbage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Not UTF-8: a fixed pseudo-random byte string with NULs and high bytes.
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut bytes: Vec<u8> = (0..8192).map(|_| rng.u8(..)).collect();
    bytes[0] = 0xff;
    std::fs::write(dir.path().join("garbage.yaml"), &bytes).unwrap();
    each_command_refuses(dir.path(), "garbage.yaml", |cmd| match cmd {
        "show" => "neither a saved plan",
        _ => "not utf-8",
    });
    // Valid UTF-8 but control characters and NULs: a YAML error, not a crash.
    let text: String = (0..4096u32)
        .map(|i| char::from_u32(i % 32).unwrap_or('\0'))
        .collect();
    std::fs::write(dir.path().join("controls.yaml"), text).unwrap();
    for args in plan_commands("controls.yaml") {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = swing_in(dir.path(), &a);
        assert_eq!(r.code, Some(1), "swing {a:?}\n{}", r.explain());
        assert!(!r.stderr.contains("panicked"), "{}", r.explain());
        assert!(!r.stderr.trim().is_empty() || !r.stdout.trim().is_empty());
    }
}

#[test]
fn a_100_mb_file_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("huge.yaml")).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap(); // sparse: no disk blocks, reads as NULs
    drop(f);
    let started = Instant::now();
    for args in plan_commands("huge.yaml") {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = swing_in(dir.path(), &a);
        let needle = match a[0] {
            "apply" => "not a valid plan",
            "show" => "huge.yaml",
            _ => "larger than",
        };
        assert_refused_or_explain(&r, &a, needle);
    }
    // The size cap means nobody parses 100 MB: all six runs together stay fast.
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "refusing a 100 MB file took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_empty_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.yaml"), "").unwrap();
    std::fs::write(dir.path().join("blank.yaml"), "\n\n   \n# only a comment\n").unwrap();
    each_command_refuses(dir.path(), "empty.yaml", |cmd| match cmd {
        "show" => "neither a saved plan",
        _ => "empty",
    });
    for args in plan_commands("blank.yaml") {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = swing_in(dir.path(), &a);
        assert_eq!(r.code, Some(1), "swing {a:?}\n{}", r.explain());
        assert!(!r.stderr.contains("panicked"), "{}", r.explain());
    }
}

#[test]
fn nonsense_command_lines_are_usage_errors() {
    // (arguments, a word the message must contain)
    let cases: &[(&[&str], &str)] = &[
        (&[], "usage"),
        (&["--bogus"], "unexpected argument '--bogus'"),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["validate"], "required"),
        (
            &["validate", EXAMPLE, "--format", "xml"],
            "invalid value 'xml'",
        ),
        (
            &["validate", EXAMPLE, "--frob"],
            "unexpected argument '--frob'",
        ),
        (&["plan"], "required"),
        (
            &["plan", EXAMPLE, "--offline", "--format", "yaml"],
            "invalid value 'yaml'",
        ),
        (
            &["plan", EXAMPLE, "--offline", "--format"],
            "a value is required",
        ),
        (&["graph"], "required"),
        (
            &["graph", EXAMPLE, "--format", "png"],
            "invalid value 'png'",
        ),
        (&["show"], "required"),
        (
            &["show", "x.json", "--format", "nope"],
            "invalid value 'nope'",
        ),
        (
            &["apply", "--output", "xml", EXAMPLE],
            "invalid value 'xml'",
        ),
        (&["apply", EXAMPLE, EXAMPLE], "unexpected argument"),
        (&["apply", EXAMPLE, "--confirm"], "a value is required"),
        (&["unlock"], "required"),
        (&["probe"], "required"),
        (&["schema", "--nope"], "unexpected argument '--nope'"),
        (
            &[
                "plan",
                "plans/examples",
                "--offline",
                "--out",
                "never-written.plan",
            ],
            "--out saves one plan",
        ),
        (
            &["plan", EXAMPLE, "--offline", "--detailed-exitcode=yes"],
            "unexpected value",
        ),
        (&["demo", "--time-scale", "fast"], "invalid value 'fast'"),
    ];
    for (args, needle) in cases {
        let r = swing(args);
        assert_eq!(r.code, Some(1), "swing {args:?}\n{}", r.explain());
        assert!(
            !r.stderr.contains("panicked"),
            "swing {args:?}\n{}",
            r.explain()
        );
        let err = r.stderr.to_lowercase();
        assert!(
            err.contains(&needle.to_lowercase()),
            "swing {args:?}: expected {needle:?} on stderr\n{}",
            r.explain()
        );
        assert!(
            r.stdout.is_empty(),
            "swing {args:?}: usage errors go to stderr\n{}",
            r.explain()
        );
    }
}

#[test]
fn commands_that_parse_but_make_no_sense_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // apply without any plan.
    swing_in(dir.path(), &["apply"]).assert_refused(1, "name a saved plan");
    // --resume with nothing to resume.
    swing_in(dir.path(), &["apply", "--resume", "--state-dir", "state"])
        .assert_refused(1, "nothing to resume");
    // A scenario the demo does not know.
    swing_in(dir.path(), &["demo", "no-such-scenario"]).assert_refused(1, "unknown scenario");
    // A time scale outside (0, 1].
    swing_in(dir.path(), &["demo", "--time-scale", "7"]).assert_refused(1, "--time-scale");
    // show on a plan file (YAML), which is neither a saved plan nor a JSON view.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
    swing_in(dir.path(), &["show", example.to_str().unwrap()])
        .assert_refused(1, "neither a saved plan");
}

#[test]
fn help_and_version_still_exit_zero() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["plan", "--help"],
        &["apply", "--help"],
    ] {
        let r = swing(args);
        assert_eq!(r.code, Some(0), "swing {args:?}\n{}", r.explain());
        assert!(!r.stdout.is_empty());
    }
}

/// A plan whose secrets and CA file are the given references, for `swing plan` (online): the
/// wiring reads them before any provider is contacted. The appliance is on loopback, and every
/// run below stops in the wiring (a refused file, or the unset `${env:…}` client id after it).
fn plan_reading(dir: &Path, password: &str, ca_file: &str) -> String {
    let text = format!(
        r#"version: 1
name: input-files
site: access.example.com
target: {{ version: "25.1.3" }}
appliances:
  main: {{ address: 127.0.0.1, port: 9, current_version: "24.3.2" }}
backup:
  directory: ./backups
  password: "{password}"
providers:
  appliance:
    type: beyondtrust
    client_id: ${{env:SWING_TEST_UNSET_CLIENT_ID}}
    client_secret: ${{env:SWING_TEST_UNSET_CLIENT_SECRET}}
    ca_file: {ca_file}
    operator: prompt
"#
    );
    std::fs::write(dir.join("plan.yaml"), text).unwrap();
    "plan.yaml".into()
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
}

/// `swing plan` on the plan in `dir`: ends (the 60 s kill in `swing_in` bounds it) with exit 1
/// within `bound`, with `needle` in the output.
fn plan_refused_within(dir: &Path, bound: Duration, needle: &str) -> Run {
    let t = Instant::now();
    let r = swing_in(dir, &["plan", "plan.yaml"]);
    r.assert_refused(1, needle);
    assert!(
        t.elapsed() < bound,
        "took {:?} (over {bound:?})\n{}",
        t.elapsed(),
        r.explain()
    );
    r
}

#[test]
fn a_secret_file_that_is_a_device_a_fifo_or_huge_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let bound = Duration::from_secs(20);
    // /dev/zero streams without end: once it grew the process to gigabytes.
    plan_reading(dir.path(), "${file:/dev/zero}", "./ca.pem");
    let r = plan_refused_within(
        dir.path(),
        bound,
        "is a character device, not a regular file",
    );
    r.assert_refused(1, "(for backup.password)");
    // A FIFO without a writer: opening it once blocked forever.
    mkfifo(&dir.path().join("pw.fifo"));
    plan_reading(dir.path(), "${file:./pw.fifo}", "./ca.pem");
    plan_refused_within(
        dir.path(),
        bound,
        "is a FIFO (named pipe), not a regular file",
    );
    // 1 MiB: once sent whole as an HTTP header.
    std::fs::write(dir.path().join("big.secret"), vec![b'x'; 1 << 20]).unwrap();
    plan_reading(dir.path(), "${file:./big.secret}", "./ca.pem");
    plan_refused_within(dir.path(), bound, "is larger than 65536 bytes");
}

#[test]
fn a_ca_file_that_is_a_device_a_fifo_or_huge_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let bound = Duration::from_secs(20);
    std::fs::write(dir.path().join("pw"), "backup-password\n").unwrap();
    std::fs::set_permissions(
        dir.path().join("pw"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let run = |ca: &str, needle: &str| {
        plan_reading(dir.path(), "${file:./pw}", ca);
        // The client id and secret resolve first: set them, so the CA file is what fails.
        let t = Instant::now();
        let out = tempfile::tempdir().unwrap();
        let se = out.path().join("stderr");
        let mut child = Command::new(env!("CARGO_BIN_EXE_swing"))
            .args(["plan", "plan.yaml"])
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("SWING_TEST_UNSET_CLIENT_ID", "id")
            .env("SWING_TEST_UNSET_CLIENT_SECRET", "not-a-real-secret")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&se).unwrap())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > bound {
                let _ = child.kill();
                let _ = child.wait();
                panic!("swing plan with ca_file {ca} still running after {bound:?} (hang)");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::fs::read_to_string(&se).unwrap();
        assert_eq!(status.code(), Some(1), "ca_file {ca}\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains("ca_file"), "names the field: {stderr}");
        assert!(
            stderr.contains(needle),
            "ca_file {ca}: expected {needle:?}\n{stderr}"
        );
    };
    run("/dev/zero", "is a character device, not a regular file");
    mkfifo(&dir.path().join("ca.fifo"));
    run("./ca.fifo", "is a FIFO (named pipe), not a regular file");
    std::fs::write(dir.path().join("big.pem"), vec![b'x'; 1 << 20]).unwrap();
    run("./big.pem", "is larger than 65536 bytes");
}

#[test]
fn a_secret_file_readable_by_others_is_used_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "backup-password\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    plan_reading(dir.path(), "${file:./pw}", "./ca.pem");
    // The password is read (with the warning), then the unset client id stops the run.
    let r = plan_refused_within(
        dir.path(),
        Duration::from_secs(20),
        "SWING_TEST_UNSET_CLIENT_ID",
    );
    let warning = "is readable by others (mode 0644); run: chmod 600";
    assert!(r.stderr.contains(warning), "{}", r.explain());
    assert!(
        r.stderr.contains("(for backup.password)"),
        "{}",
        r.explain()
    );
    assert!(
        !r.stderr.contains("backup-password"),
        "never the value\n{}",
        r.explain()
    );
    // 0600: no warning.
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = plan_refused_within(
        dir.path(),
        Duration::from_secs(20),
        "SWING_TEST_UNSET_CLIENT_ID",
    );
    assert!(!r.stderr.contains("readable by others"), "{}", r.explain());
}
