//! `swing rehearse`, the real binary: every example plan rehearsed `--offline` to a report
//! (the NAT one in a private namespace with nftables as root, and through the exec stand-in
//! everywhere), a live
//! rehearsal against simulators this test starts as "production" (unusual versions, roles
//! swapped from what the plan expects — drift —, 300 Jump Clients) whose twin must reproduce what was
//! observed while production sees nothing but reads and at most one token per appliance, and
//! the two abort paths (`install-fails@b.install`, `dns-down@switch.to-b`).
//!
//! Must not: touch anything but loopback, its temp dirs and (as root) its own namespaces.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Output;

use swing_sim::{JumpClientGroup, JumpClientKind, Role, SimConfig, Simulator};

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/examples")
}

/// Runs `swing rehearse ARGS` in `dir` with the test's own state home.
async fn rehearse(dir: &Path, args: &[&str]) -> Output {
    rehearse_with(dir, args, &[]).await
}

async fn rehearse_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_swing"))
        .arg("rehearse")
        .envs(env.iter().copied())
        .args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", swing_testkit::kit::state_home(dir))
        .env_remove("BT_CLIENT_SECRET")
        .output()
        .await
        .expect("swing runs")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

async fn offline(example: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let plan = examples().join(example);
    let out = rehearse_with(
        dir.path(),
        &["--offline", "--format", "json", plan.to_str().unwrap()],
        env,
    )
    .await;
    let r = json(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["outcome"], "done", "{r:#}");
    assert_eq!(r["twin"]["source"], "offline");
    // Every step ran on the twin, each with its rehearsed duration.
    for s in r["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "succeeded", "{s}");
        assert!(s["rehearsed_s"].as_f64().is_some(), "{s}");
    }
    assert!(r["makespan_s"].as_f64().unwrap() > 0.0);
    assert_eq!(r["problems"], serde_json::json!([]), "{r:#}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_plan_is_rehearsed_offline_to_a_report() {
    for example in [
        "single-automatic.yaml",
        "single-manual.yaml",
        "failover-sync-shared-ip.yaml",
        "failover-async-shared-ip.yaml",
        "failover-async-dns.yaml",
        "failover-async-dns-final-a.yaml",
        "hardware-migration.yaml",
    ] {
        let r = offline(example, &[]).await;
        let served: Vec<&str> = r["served_by"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s.as_str())
            .collect();
        assert!(!served.is_empty(), "{example}: the client saw nobody");
        for w in r["windows"].as_array().unwrap() {
            assert!(w["rehearsed_used_s"].as_f64().is_some(), "{example}: {w}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nat_example_is_rehearsed_in_a_private_namespace_as_root() {
    if !swing_testkit::rehearse::nat_twin_available() {
        eprintln!(
            "skipped: the NAT twin in a namespace needs root, `ip netns` and nft (a private network namespace with real nftables)"
        );
        return;
    }
    let r = offline("failover-async-nat.yaml", &[]).await;
    assert_eq!(r["served_by"], serde_json::json!(["a", "b"]), "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nat_example_is_rehearsed_through_the_exec_stand_in_without_root() {
    // The stand-in is what a user without root gets; SWING_TWIN_NAT=exec picks it as root.
    let r = offline("failover-async-nat.yaml", &[("SWING_TWIN_NAT", "exec")]).await;
    assert_eq!(r["served_by"], serde_json::json!(["a", "b"]), "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_install_halts_at_the_step_with_the_guides_advice_and_the_abort_path() {
    let dir = tempfile::tempdir().unwrap();
    let plan = examples().join("failover-async-shared-ip.yaml");
    let out = rehearse(
        dir.path(),
        &[
            "--offline",
            "--fault",
            "install-fails@b.install",
            "--format",
            "json",
            plan.to_str().unwrap(),
        ],
    )
    .await;
    let r = json(&out);
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    assert_eq!(r["outcome"], "failed");
    let halt = &r["halt"];
    assert_eq!(halt["step"], "b.install", "{r:#}");
    let advice = halt["advice"].to_string();
    assert!(advice.contains("do NOT restart the appliance"), "{advice}");
    assert!(
        halt["abort_path"]
            .as_str()
            .unwrap()
            .contains("a still serves the site"),
        "{halt}"
    );
    // The state left behind: a serves, unchanged; b back on its old version, failing.
    let after = r["state_after"].as_array().unwrap();
    let a = after.iter().find(|x| x["name"] == "a").unwrap();
    let b = after.iter().find(|x| x["name"] == "b").unwrap();
    assert_eq!(a["version"], "24.3.2");
    assert_eq!(a["shared_ips"].as_array().unwrap().len(), 1);
    assert_eq!(
        (b["version"].as_str(), b["healthy"].as_bool()),
        (Some("24.3.2"), Some(false))
    );
    // Nothing after the failed install ran.
    let step = |id: &str| {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(step("switch.to-b"), "skipped");
    assert_eq!(step("a.install"), "skipped");
    // Text: the same halt for a person.
    let out = rehearse(
        dir.path(),
        &[
            "--offline",
            "--fault",
            "install-fails@b.install",
            plan.to_str().unwrap(),
        ],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("halted at b.install"), "{text}");
    assert!(text.contains("abort path"), "{text}");
    // Markdown for the ticket: headings, list items, step ids as code.
    let out = rehearse(
        dir.path(),
        &[
            "--offline",
            "--fault",
            "install-fails@b.install",
            "--format",
            "markdown",
            plan.to_str().unwrap(),
        ],
    )
    .await;
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("## Rehearsal\n"), "{md}");
    assert!(md.contains("### Windows\n"), "{md}");
    assert!(md.contains("- halted at `b.install`:"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_down_at_the_switch_halts_safely_before_the_swing() {
    let dir = tempfile::tempdir().unwrap();
    let plan = examples().join("failover-async-dns-final-a.yaml");
    let out = rehearse(
        dir.path(),
        &[
            "--offline",
            "--fault",
            "dns-down@switch.to-b",
            "--format",
            "json",
            plan.to_str().unwrap(),
        ],
    )
    .await;
    let r = json(&out);
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    assert_eq!(r["halt"]["step"], "switch.to-b", "{r:#}");
    assert!(
        r["halt"]["cause"].as_str().unwrap().contains("SERVFAIL"),
        "{r:#}"
    );
    assert!(
        r["halt"]["abort_path"]
            .as_str()
            .unwrap()
            .contains("back to a"),
        "{r:#}"
    );
    // Before the swing: the client only ever saw a; a still runs its old version, the pair
    // is broken (the switch phase's abort path re-establishes it).
    assert_eq!(r["served_by"], serde_json::json!(["a"]), "{r:#}");
    let a = r["state_after"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "a")
        .unwrap()
        .clone();
    assert_eq!(
        (a["version"].as_str(), a["healthy"].as_bool()),
        (Some("24.3.2"), Some(true))
    );
}

#[tokio::test]
async fn a_bad_fault_is_refused_before_anything_starts_naming_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let plan = examples().join("failover-async-dns.yaml");
    let out = rehearse(
        dir.path(),
        &[
            "--offline",
            "--fault",
            "melts@west.install",
            plan.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown fault \"melts\""), "{err}");
    assert!(
        err.contains("install-fails") && err.contains("dns-down"),
        "{err}"
    );
    let out = rehearse(
        dir.path(),
        &[
            "--offline",
            "--fault",
            "install-fails@nowhere",
            plan.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no step nowhere") && err.contains("west.install"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing may start");
}

fn write_secret(path: &Path, value: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_rehearsal_copies_the_observed_site_and_only_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = [127u8, fastrand::u8(64..250), fastrand::u8(1..250)];
    let ip = |n| IpAddr::V4(Ipv4Addr::new(base[0], base[1], base[2], n));
    let port = std::net::TcpListener::bind(SocketAddr::new(ip(11), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = "access.example.test";
    let secret = format!("prod-secret-{}", fastrand::u64(..));
    // "Production": unusual versions, b primary holding the shared IP although the plan
    // expects a, 300 active Jump Clients and a few of the other kinds.
    let mut sims = Vec::new();
    for (name, n, version, role) in [
        ("a", 11, "23.3.4", Role::Backup),
        ("b", 12, "23.3.4", Role::Primary),
    ] {
        let mut cfg = SimConfig::new(name, d.join("ca"));
        cfg.listen = SocketAddr::new(ip(n), port);
        cfg.site = site.into();
        cfg.version = version.into();
        cfg.update_to = Some("25.1.3".into());
        cfg.client_id = "prod".into();
        cfg.client_secret = secret.clone();
        cfg.jump_clients = 300;
        cfg.jump_client_groups = vec![
            JumpClientGroup {
                kind: JumpClientKind::Passive,
                count: 7,
                needs_update: false,
            },
            JumpClientGroup {
                kind: JumpClientKind::Lost,
                count: 3,
                needs_update: false,
            },
        ];
        cfg.cert_valid_days = 40;
        cfg.peer = Some(SocketAddr::new(ip(if n == 11 { 12 } else { 11 }), port));
        cfg.key = Some("prod-pair-key".into());
        cfg.role = role;
        if role == Role::Primary {
            cfg.shared_ip = Some(ip(10));
        }
        sims.push((name, Simulator::start(cfg).await.unwrap()));
    }
    write_secret(&d.join("client-secret"), &secret);
    write_secret(&d.join("backup-password"), "prod-backup-password");
    let plan = format!(
        "version: 1
name: prod-rehearsal
site: {site}
target: {{ version: \"25.1.3\", source: automatic }}
appliances:
  a: {{ address: {a}, port: {port} }}
  b: {{ address: {b}, port: {port} }}
failover:
  primary: a
  backup: b
  strategy: synchronous
  switch: {{ method: shared-ip, address: {shared} }}
  peer_port: {port}
backup:
  directory: ./backups
  password: ${{file:./backup-password}}
providers:
  appliance:
    type: beyondtrust
    client_id: prod
    client_secret: ${{file:./client-secret}}
    ca_file: ./ca/ca.pem
",
        a = ip(11),
        b = ip(12),
        shared = ip(10),
    );
    std::fs::write(d.join("plan.yaml"), plan).unwrap();
    let before: Vec<Vec<String>> = sims
        .iter()
        .map(|(_, s)| s.state().actions.iter().map(|a| a.action.clone()).collect())
        .collect();

    let out = rehearse(d, &["--format", "json", "plan.yaml"]).await;
    let r = json(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(&secret), "the production secret was printed");

    // The twin reproduced what was observed.
    let twin = &r["twin"];
    assert_eq!(twin["source"], "observed", "{r:#}");
    let app = |n: &str| {
        twin["appliances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .unwrap()
            .clone()
    };
    let (a, b) = (app("a"), app("b"));
    assert_eq!(
        (a["version"].as_str(), a["role"].as_str()),
        (Some("23.3.4"), Some("backup"))
    );
    assert_eq!(
        (b["version"].as_str(), b["role"].as_str()),
        (Some("23.3.4"), Some("primary"))
    );
    assert_eq!(b["holds_shared_ip"], true);
    assert_eq!(a["holds_shared_ip"], false);
    assert_eq!(a["jump_clients"]["active"], 300, "{a}");
    assert_eq!(a["jump_clients"]["passive"], 7, "{a}");
    assert_eq!(a["jump_clients"]["lost"], 3, "{a}");
    let days = a["certificate_valid_days"].as_i64().unwrap();
    assert!((39..=40).contains(&days), "{a}");
    assert_eq!(twin["switch"]["holder"], "b");
    // Roles swapped from the plan: shown as drift, and refused on the twin before any step,
    // as a real apply would refuse on the site.
    let drift = r["drift"].to_string();
    assert!(
        drift.contains("appliance a is backup, the plan names it primary"),
        "{r:#}"
    );
    assert_eq!(r["outcome"], "refused", "{r:#}");
    assert!(
        r["halt"]["cause"].as_str().unwrap().contains("drift"),
        "{r:#}"
    );
    assert_eq!(out.status.code(), Some(1));

    // Production saw reads only: no new action, at most one token per appliance.
    for ((name, sim), before) in sims.iter().zip(before) {
        let st = sim.state();
        let now: Vec<String> = st.actions.iter().map(|a| a.action.clone()).collect();
        assert_eq!(now, before, "appliance {name} logged an action");
        assert!(st.tokens_issued <= 1, "{name}: {} tokens", st.tokens_issued);
        assert_eq!(st.version, "23.3.4");
    }
    for (_, s) in sims {
        s.shutdown().await;
    }
}
