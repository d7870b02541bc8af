//! The exec provider against real processes: the example script in `plans/providers/` passes
//! the NAT conformance suite and serves DNS; misbehaving commands (non-zero exit, bad JSON,
//! wrong protocol, hanging, flooding stderr) give clear typed errors; the request travels on
//! stdin only and stripped environment variables never reach the command.
//!
//! Must not: contact any address — the addresses here are strings in a state file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use swing_engine::provider::{DnsProvider, ErrorKind, NatProvider};
use swing_providers::conformance::nat::{NatFixture, run_all};
use swing_providers::exec::ExecPlugin;
use swing_schema::plan::ExecProvider;

fn require_python() {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test runs plans/providers/state-file-provider.py and needs `python3` (apt-get install python3)"
    );
}

fn write_state(dir: &Path, json: &str) -> PathBuf {
    let p = dir.join("state.json");
    std::fs::write(&p, json).expect("write state");
    p
}

/// The example script configured as a plan would: command relative to the plan directory.
fn example_plugin(state: &Path, plan: &str) -> ExecPlugin {
    let cfg = ExecProvider {
        command: "./state-file-provider.py".into(),
        args: vec!["--state".into(), state.display().to_string()],
    };
    // Relative, as the CLI may pass it (cargo runs tests in the package directory).
    ExecPlugin::new(&cfg, Path::new("../plans/providers"), plan)
}

/// A bash script in `dir` acting as a (mis)behaving provider.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/bash\n{body}\n")).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

fn plugin(p: &Path) -> ExecPlugin {
    ExecPlugin::from_command(p, Vec::new(), "t").with_timeout(Duration::from_secs(10))
}

fn public() -> std::net::SocketAddr {
    "203.0.113.10:443".parse().expect("addr")
}

#[tokio::test]
async fn example_script_passes_the_nat_conformance_suite() {
    require_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = write_state(
        dir.path(),
        r#"{"nat": {"203.0.113.10:443": {"target": "10.0.0.11:443", "comment": null}}}"#,
    );
    let nat = example_plugin(&state, "exec-conf");
    let fixture = NatFixture {
        public: public(),
        a: "10.0.0.11:443".parse().expect("a"),
        b: "10.0.0.12:443".parse().expect("b"),
        unknown_public: "203.0.113.99:443".parse().expect("unknown"),
        expect_comment: Some("swing:exec-conf".into()),
    };
    if let Err(e) = run_all(&nat, &fixture).await {
        panic!("{e}");
    }
    // The state file really changed hands (the suite ends swung back to A, comment kept).
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    assert_eq!(saved["nat"]["203.0.113.10:443"]["target"], "10.0.0.11:443");
    assert_eq!(
        saved["nat"]["203.0.113.10:443"]["comment"],
        "swing:exec-conf"
    );
}

#[tokio::test]
async fn example_script_serves_dns_with_compare_and_swap() {
    require_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = write_state(
        dir.path(),
        r#"{"dns": {"access.example.test": {"addresses": ["10.0.0.11"], "ttl": 3600}}}"#,
    );
    let dns = example_plugin(&state, "exec-dns");
    let rec = "access.example.test";
    let a: std::net::IpAddr = "10.0.0.11".parse().expect("a");
    let b: std::net::IpAddr = "10.0.0.12".parse().expect("b");

    let obs = DnsProvider::observe(&dns, rec).await.expect("observe");
    assert_eq!((obs.addresses.clone(), obs.ttl), (vec![a], 3600));
    dns.set_ttl(rec, &obs, 60).await.expect("set ttl");
    assert_eq!(
        DnsProvider::observe(&dns, rec).await.expect("observe").ttl,
        60
    );
    // A stale expectation (TTL changed since) is a conflict.
    let e = dns.set_ttl(rec, &obs, 30).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");

    let stranger: std::net::IpAddr = "10.0.0.99".parse().expect("x");
    let e = DnsProvider::swing(&dns, rec, stranger, b, 60)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    DnsProvider::swing(&dns, rec, a, b, 60)
        .await
        .expect("swing");
    DnsProvider::swing(&dns, rec, a, b, 60)
        .await
        .expect("repeated swing is a no-op");
    let obs = DnsProvider::observe(&dns, rec).await.expect("observe");
    assert_eq!((obs.addresses, obs.ttl), (vec![b], 60));
    let missing = DnsProvider::observe(&dns, "missing.example.test")
        .await
        .expect("observe missing");
    assert_eq!((missing.addresses.len(), missing.ttl), (0, 0));
    let e = DnsProvider::swing(&dns, "missing.example.test", a, b, 60)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
}

#[tokio::test]
async fn example_script_passes_the_dns_conformance_suite() {
    require_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = write_state(
        dir.path(),
        r#"{"dns": {"access.example.test": {"addresses": ["10.0.0.11"], "ttl": 3600}}}"#,
    );
    let dns = example_plugin(&state, "exec-dns-conf");
    let fixture = swing_providers::conformance::dns::DnsFixture {
        record: "access.example.test".into(),
        a: "10.0.0.11".parse().expect("a"),
        b: "10.0.0.12".parse().expect("b"),
        other: "10.0.0.99".parse().expect("other"),
        ttl: 3600,
    };
    match swing_providers::conformance::dns::run_all(&dns, &fixture).await {
        Ok(passed) => assert_eq!(passed, swing_providers::conformance::dns::CHECKS),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn misbehaving_commands_give_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    let p = script(d, "exit3.sh", "echo 'cannot reach the gateway' >&2; exit 3");
    let e = NatProvider::observe(&plugin(&p), public())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Failed);
    assert!(
        e.message.contains("exit status 3") && e.message.contains("cannot reach the gateway"),
        "{e}"
    );

    let p = script(d, "garbage.sh", "cat >/dev/null; echo 'this is not json'");
    let e = NatProvider::observe(&plugin(&p), public())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Failed);
    assert!(
        e.message.contains("exited 0") && e.message.contains("not a JSON object"),
        "{e}"
    );

    let p = script(
        d,
        "conflict.sh",
        r#"cat >/dev/null; echo '{"ok":false,"error":{"kind":"conflict","message":"moved by someone else"}}'"#,
    );
    let e = NatProvider::observe(&plugin(&p), public())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains("moved by someone else"), "{e}");

    // An error reported with a non-zero exit is still the plugin's typed error.
    let p = script(
        d,
        "auth.sh",
        r#"cat >/dev/null; echo '{"ok":false,"error":{"kind":"auth","message":"token expired"}}'; exit 1"#,
    );
    assert_eq!(
        NatProvider::observe(&plugin(&p), public())
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Auth
    );

    let p = script(
        d,
        "weird.sh",
        r#"cat >/dev/null; echo '{"ok":false,"error":{"kind":"gremlins","message":"x"}}'"#,
    );
    assert_eq!(
        NatProvider::observe(&plugin(&p), public())
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Failed
    );

    let p = script(
        d,
        "v2.sh",
        r#"cat >/dev/null; echo '{"protocol":2,"ok":true,"observation":{}}'"#,
    );
    let e = NatProvider::observe(&plugin(&p), public())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("protocol 2"), "{e}");

    let p = script(
        d,
        "nook.sh",
        r#"cat >/dev/null; echo '{"observation":{"target":null}}'"#,
    );
    let e = NatProvider::observe(&plugin(&p), public())
        .await
        .unwrap_err();
    assert!(e.message.contains("without a boolean `ok`"), "{e}");

    let p = script(
        d,
        "badtarget.sh",
        r#"cat >/dev/null; echo '{"ok":true,"observation":{"target":"nowhere"}}'"#,
    );
    let e = NatProvider::observe(&plugin(&p), public())
        .await
        .unwrap_err();
    assert!(e.message.contains("not address:port"), "{e}");

    let e = NatProvider::observe(&plugin(&d.join("does-not-exist")), public())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");

    let p = d.join("not-executable.sh");
    std::fs::write(&p, "#!/bin/bash\n").expect("write");
    let e = NatProvider::observe(&plugin(&p), public())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");

    // stderr is captured but bounded.
    let p = script(
        d,
        "noisy.sh",
        "head -c 200000 /dev/zero | tr '\\0' x >&2; exit 1",
    );
    let e = NatProvider::observe(&plugin(&p), public())
        .await
        .unwrap_err();
    assert!(
        e.message.len() < 4000 && e.message.contains("(truncated)"),
        "{} bytes",
        e.message.len()
    );
}

#[tokio::test]
async fn a_hanging_command_is_killed_with_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("child.pid");
    // The script leaves a child holding stdout open, then hangs itself.
    let p = script(
        dir.path(),
        "hang.sh",
        &format!("sleep 300 & echo $! > {}\nsleep 300", pidfile.display()),
    );
    let slow =
        ExecPlugin::from_command(&p, Vec::new(), "t").with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let e = NatProvider::observe(&slow, public()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains("did not answer within"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    let pid = std::fs::read_to_string(&pidfile)
        .expect("pid file")
        .trim()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // Gone, or a zombie waiting for its reaper: either way no longer running.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("");
        if stat.is_empty() || state == "Z" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the command's child {pid} survived the timeout: {stat}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_response_over_the_cap_is_cut_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Endless stdout: reading stops at the cap, the command is not waited out until the timeout.
    let p = script(
        dir.path(),
        "flood.sh",
        "cat >/dev/null; yes '{\"ok\":true}'",
    );
    let started = Instant::now();
    let e = NatProvider::observe(&plugin(&p), public())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Failed, "{e}");
    assert!(
        e.message.contains(&format!(
            "wrote more than {} bytes to stdout",
            swing_providers::exec::MAX_RESPONSE_BYTES
        )),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_timeout_kills_a_grandchild_that_let_go_of_every_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("grandchild.pid");
    let p = script(
        dir.path(),
        "detach.sh",
        &format!(
            "(sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {}) \nsleep 300",
            pidfile.display()
        ),
    );
    let slow =
        ExecPlugin::from_command(&p, Vec::new(), "t").with_timeout(Duration::from_millis(500));
    let e = NatProvider::observe(&slow, public()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    let pid = std::fs::read_to_string(&pidfile)
        .expect("pid file")
        .trim()
        .to_owned();
    wait_until_not_running(&pid);
}

/// Waits (bounded) until `pid` is gone or a zombie; panics if it is still running after 5 s.
fn wait_until_not_running(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("");
        if stat.is_empty() || state == "Z" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pid} survived the timeout: {stat}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn request_goes_over_stdin_only_and_stripped_env_is_not_passed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let p = script(
        d,
        "spy.sh",
        &format!(
            "printf '%s\\n' \"$@\" > {args}\ncat > {stdin}\nenv > {env}\n\
             echo '{{\"ok\":true,\"observation\":{{\"target\":\"10.0.0.11:443\",\"comment\":null}}}}'",
            args = d.join("args").display(),
            stdin = d.join("stdin").display(),
            env = d.join("env").display(),
        ),
    );
    let spy = ExecPlugin::from_command(&p, vec!["--site".into(), "edge".into()], "spy")
        .without_env(["CARGO_PKG_NAME"]);
    // cargo sets both for a test run; one is stripped, the other shows the rest is passed on.
    assert!(
        std::env::var_os("CARGO_PKG_NAME").is_some()
            && std::env::var_os("CARGO_MANIFEST_DIR").is_some()
    );
    let obs = NatProvider::observe(&spy, public()).await.expect("observe");
    assert_eq!(obs.target, Some("10.0.0.11:443".parse().expect("t")));

    let args = std::fs::read_to_string(d.join("args")).expect("args");
    assert_eq!(
        args, "--site\nedge\n",
        "only the configured args are on the command line"
    );
    let req: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("stdin")).expect("stdin"))
            .expect("request JSON");
    assert_eq!(req["protocol"], 1);
    assert_eq!(req["op"], "observe");
    assert_eq!(req["plan"], "spy");
    assert_eq!(
        req["resource"],
        serde_json::json!({"kind": "nat", "public": "203.0.113.10:443"})
    );
    let env = std::fs::read_to_string(d.join("env")).expect("env");
    assert!(env.lines().any(|l| l == "SWING_EXEC_PROTOCOL=1"), "{env}");
    assert!(
        !env.lines().any(|l| l.starts_with("CARGO_PKG_NAME=")),
        "CARGO_PKG_NAME was stripped but reached the command"
    );
    assert!(
        env.lines().any(|l| l.starts_with("CARGO_MANIFEST_DIR=")),
        "{env}"
    );
}
