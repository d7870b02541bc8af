//! The fault matrix: the real `swing apply` against simulated appliances (the scenario kit,
//! `operator: sim`, fast time scale) with one fault switched on at one phase of the change
//! (before the apply starts, or the moment a named step starts), for the single, the
//! synchronous and the asynchronous shared-IP scenarios (simulator fault knobs) and the
//! asynchronous DNS scenario (DNS faults on a real named: BADSIG, REFUSED, server down,
//! concurrent change; `swing_testkit::named`) and the asynchronous NAT scenario (missing
//! table, gateway namespace gone: real nftables, `swing_testkit::nat_gateway`). Plus a full disk
//! (tmpfs in a private mount namespace) under the backup directory and under the journal. Each cell must end in either
//! success (retries absorbed the fault) or a SAFE HALT: exit 1 with a root cause that names
//! the failing step, a message saying what was observed, and the abort path. A fault that
//! hangs must halt at the step's timeout — a run still going at the cell's deadline is a
//! failure of the cell, not an outcome. In the kill cells the apply is killed with SIGKILL
//! while the faulted step runs (a crash under the fault).
//!
//! After the first run the fault is cleared and `swing apply --resume` must finish the change
//! with the final state the scenario expects — except after a failed install, which the
//! guide forbids retrying: there the resume must halt again without installing twice. In the
//! shared-IP scenarios a prober watches the site through the shared IP during the first run:
//! the site is never served by one appliance, then the other, then the first again (never
//! half-swung), and afterwards exactly one appliance holds the shared IP. The simulators'
//! action logs must show no non-idempotent action (install, shared-IP move, failover
//! establish/break) twice.
//!
//! The lab plan states the fast time scale's durations in `policy.estimates` and a 10 s
//! `jump_clients.wait_timeout`, so step timeouts are seconds (engine: `site::step_timeout`).
//!
//! The matrix is printed (`cargo test --test faults -- --nocapture`) and copied into
//! docs/reliability.md. `SWING_FAULTS_ONLY=text` runs only the cells whose label contains
//! the text (for debugging one cell); `SWING_FAULTS_CONCURRENCY=N` (default 6) cells run at
//! a time, each with its own lab, ports, state directory, named or namespace.
//!
//! Owns: the matrix cells and their classification, the full-disk tests. Must not: talk to
//! anything but loopback, leave a mount or a named behind, or claim a cell it did not run.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use swing_providers::probe::{Prober, Route};
use swing_schema::SecretValue;
use swing_sim::{ApplianceStatus, Fault, Faults};
use swing_testkit::kit::{self, DnsSetup, Lab, LabOptions, NatSetup, Scenario};
use swing_testkit::named::{self, Named};
use swing_testkit::nat_gateway::{self, NatGateway};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Action = Arc<dyn Fn() + Send + Sync>;

/// Switches the cell's fault on (`set`) and off (`clear`): a simulator knob on every
/// appliance, or a DNS fault (`dns-…`) on the lab's named or in the plan's TSIG key file.
fn injector(
    fault: &'static str,
    lab: &Arc<Lab>,
    named: Option<&Arc<Mutex<Named>>>,
    gateway: Option<&Arc<NatGateway>>,
) -> (Action, Action) {
    let dns = || named.expect("a dns fault needs the dns lab").clone();
    let nat = || gateway.expect("a nat fault needs the nat lab").clone();
    match fault {
        "nat-missing-table" => {
            let (g, g2) = (nat(), nat());
            (
                Arc::new(move || g.delete_table()),
                Arc::new(move || g2.load_ruleset()),
            )
        }
        "nat-netns-gone" => {
            let (g, g2) = (nat(), nat());
            (
                Arc::new(move || g.remove_namespace()),
                Arc::new(move || g2.restore_namespace()),
            )
        }
        "dns-badsig" => {
            let key = lab.dir.join("tsig.key");
            let key2 = key.clone();
            (
                Arc::new(move || std::fs::write(&key, named::WRONG_SECRET).expect("key file")),
                Arc::new(move || std::fs::write(&key2, named::KEY_SECRET).expect("key file")),
            )
        }
        "dns-refused" => {
            let (n, n2) = (dns(), dns());
            (
                Arc::new(move || lock(&n).allow_updates(false)),
                Arc::new(move || lock(&n2).allow_updates(true)),
            )
        }
        "dns-down" => {
            let (n, n2) = (dns(), dns());
            (
                Arc::new(move || lock(&n).stop()),
                Arc::new(move || lock(&n2).restart()),
            )
        }
        "dns-concurrent-change" => {
            // Someone else points the record elsewhere (with the lowered TTL, so only the
            // address differs from what swing set); clearing = they put it back.
            let (n, n2) = (dns(), dns());
            let a = lab.first_address().expect("first appliance").to_string();
            let record = format!("{}.", kit::SITE);
            let (r1, r2) = (record.clone(), record);
            (
                Arc::new(move || {
                    assert!(lock(&n).nsupdate(&format!(
                        "update delete {r1} A\nupdate add {r1} {} A 127.0.0.99",
                        kit::DNS_SWITCH_TTL
                    )));
                }),
                Arc::new(move || {
                    assert!(lock(&n2).nsupdate(&format!(
                        "update delete {r2} A\nupdate add {r2} {} A {a}",
                        kit::DNS_SWITCH_TTL
                    )));
                }),
            )
        }
        spec => {
            let fault: Fault = spec.parse().expect("fault spec");
            let (l1, l2) = (lab.clone(), lab.clone());
            (
                Arc::new(move || {
                    for (_, s) in &l1.sims {
                        s.set_fault(fault.clone());
                    }
                }),
                Arc::new(move || {
                    for (_, s) in &l2.sims {
                        s.set_faults(Faults::default());
                    }
                }),
            )
        }
    }
}

/// When the fault is switched on.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Before the apply starts (preflight sees it).
    Start,
    /// The moment this step starts.
    At(&'static str),
}

impl Phase {
    fn label(self) -> String {
        match self {
            Phase::Start => "from start".into(),
            Phase::At(s) => format!("at {s}"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    scenario: Scenario,
    fault: &'static str,
    phase: Phase,
    /// SIGKILL the apply while the faulted step runs.
    kill: bool,
}

impl Cell {
    fn label(&self) -> String {
        format!(
            "{} {} {}{}",
            self.scenario.name(),
            self.fault,
            self.phase.label(),
            if self.kill { " + kill -9" } else { "" }
        )
    }
}

/// How long after the faulted step started the kill cells kill the apply (mid-step: the
/// install's action has been sent and the appliance is installing; the switch is moving).
const KILL_AFTER: Duration = Duration::from_millis(150);
/// A first run still going after this is a failure of the cell (a fault must halt at the
/// step's timeout, which the lab plan makes seconds).
const FIRST_RUN_LIMIT: Duration = Duration::from_secs(90);
const RESUME_LIMIT: Duration = Duration::from_secs(90);

/// How one `swing apply` run ended.
#[derive(Debug)]
enum End {
    Done,
    Halt {
        step: String,
        message: String,
        abort: String,
    },
    Paused,
    /// Killed by the cell (kill -9 under the fault).
    Killed,
    /// Still running at the deadline (killed): a hang, never acceptable.
    Hung,
    Broken(String),
}

impl End {
    fn short(&self) -> String {
        match self {
            End::Done => "success".into(),
            End::Halt {
                step,
                message,
                abort,
            } => {
                let m: String = message.chars().take(90).collect();
                let a: String = abort
                    .split_once("Abort path")
                    .map(|(_, rest)| format!("Abort path{rest}"))
                    .unwrap_or_else(|| abort.clone())
                    .chars()
                    .take(60)
                    .collect();
                format!("safe halt at `{step}`: {m} — {a}…")
            }
            End::Paused => "paused (exit 3)".into(),
            End::Killed => "killed (kill -9) mid-step".into(),
            End::Hung => "HUNG (no halt before the deadline)".into(),
            End::Broken(w) => format!("BROKEN: {w}"),
        }
    }
}

/// What the caller does when the trigger step starts.
struct Trigger<'a> {
    step: &'a str,
    on_start: &'a (dyn Fn() + Sync),
    kill_after: Option<Duration>,
}

/// Runs `swing apply` (blocking); fires `trigger` when its step starts.
fn apply(
    lab: &Lab,
    plan: &Path,
    resume: bool,
    trigger: Option<Trigger<'_>>,
    limit: Duration,
) -> (End, String, bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swing"));
    cmd.args(["apply", "--auto-approve", "--output", "json"]);
    if resume {
        cmd.arg("--resume");
    }
    for c in lab.scenario.confirmations() {
        cmd.args(["--confirm", c]);
    }
    let mut child = cmd
        .arg(plan)
        .current_dir(&lab.dir)
        .env("XDG_STATE_HOME", kit::state_home(&lab.dir))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("swing starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let mut lines = Vec::new();
    let mut fired = false;
    let mut kill_at: Option<Instant> = None;
    let mut killed_by_cell = false;
    let mut hung = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(line) => {
                if !fired
                    && let Some(t) = &trigger
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["type"] == "step-started"
                    && v["step"] == t.step
                {
                    (t.on_start)();
                    fired = true;
                    kill_at = t.kill_after.map(|d| Instant::now() + d);
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(at) = kill_at
            && Instant::now() >= at
            && !killed_by_cell
        {
            let _ = child.kill(); // SIGKILL: a crash; the journal must carry the resume
            killed_by_cell = true;
        }
        if Instant::now() > deadline && !hung && !killed_by_cell {
            let _ = child.kill();
            hung = true;
        }
    }
    let status = child.wait().expect("wait for swing");
    let _ = reader.join();
    let stderr = err_reader.join().unwrap_or_default();
    let log = format!("{}\n--- stderr\n{stderr}", lines.join("\n"));
    if stderr.contains("panicked") {
        return (End::Broken("panic".into()), log, fired);
    }
    if hung {
        return (End::Hung, log, fired);
    }
    let report = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "finished")
        .map(|v| v["report"].clone());
    if killed_by_cell && report.is_none() {
        return (End::Killed, log, fired);
    }
    let end = match (status.code(), report) {
        (Some(0), _) => End::Done,
        (Some(3), _) => End::Paused,
        (Some(1), Some(r)) => {
            let rc = &r["root_cause"];
            let step = rc["step"].as_str().unwrap_or_default().to_string();
            let message = rc["message"].as_str().unwrap_or_default().to_string();
            let abort = rc["advice"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            if step.is_empty() || message.is_empty() || !abort.contains("Abort path") {
                End::Broken(format!("halt without step/message/abort path: {rc}"))
            } else {
                End::Halt {
                    step,
                    message,
                    abort,
                }
            }
        }
        (Some(1), None) => {
            // Refused before any step ran (nothing changed): must still say why.
            let first = stderr
                .split_once("error")
                .map(|(_, rest)| format!("error{}", rest.replace('\n', " ")))
                .unwrap_or_default();
            if first.is_empty() {
                End::Broken("exit 1 without a message".into())
            } else {
                End::Halt {
                    step: BEFORE.into(),
                    message: first,
                    abort: "nothing changed".into(),
                }
            }
        }
        (code, _) => End::Broken(format!("exit {code:?}")),
    };
    (end, log, fired)
}

/// The step name of a refusal before any step ran (nothing changed, nothing to resume).
const BEFORE: &str = "(before any step)";

/// The lab plan with the fast time scale's durations stated (step timeouts of seconds).
fn write_fast_plan(lab: &Lab, dns: Option<&DnsSetup>, nat: Option<&NatSetup>) -> PathBuf {
    let yaml = lab.plan_yaml(dns, nat).expect("plan text");
    let estimates = "health: 3s, clock: 3s, tls: 3s, window: 3s, backup: 3s, certificates: 3s, \
         vault-key: 3s, throttle: 3s, sync: 3s, break: 3s, install: 5s, online: 5s, \
         verify: 3s, switch: 3s, switch-verify: 3s, keys: 3s, establish: 3s, resync: 3s, \
         clients-followup: 3s, promote: 3s, restore-ttl: 3s";
    assert!(yaml.contains("wait_timeout: 4h"), "{yaml}");
    let yaml = yaml.replace("wait_timeout: 4h", "wait_timeout: 10s");
    // The dns lab already states `switch.prepare` (the old TTL): add to its map.
    let yaml = if yaml.contains("  estimates: { ") {
        yaml.replacen(
            "  estimates: { ",
            &format!("  estimates: {{ {estimates}, "),
            1,
        )
    } else {
        yaml.replacen(
            "policy:\n",
            &format!("policy:\n  estimates: {{ {estimates} }}\n"),
            1,
        )
    };
    let path = lab.dir.join("plan.yaml");
    std::fs::write(&path, yaml).expect("plan written");
    path
}

/// Non-idempotent simulator actions: each must appear at most once per appliance.
const ONCE: [&str; 5] = [
    "install.started",
    "shared-ip.enabled",
    "shared-ip.disabled",
    "failover.establish",
    "failover.break",
];

fn repeated_actions(lab: &Lab) -> Vec<String> {
    let mut out = Vec::new();
    for (name, s) in &lab.sims {
        let st = s.state();
        for a in ONCE {
            let n = st.actions.iter().filter(|x| x.ok && x.action == a).count();
            if n > 1 {
                out.push(format!("{name}: {a} ×{n}"));
            }
        }
    }
    out
}

fn installs(lab: &Lab) -> usize {
    lab.sims
        .iter()
        .map(|(_, s)| {
            s.state()
                .actions
                .iter()
                .filter(|a| a.action == "install.started")
                .count()
        })
        .sum()
}

/// One row of the printed matrix.
struct Row {
    label: String,
    scenario: &'static str,
    fault: &'static str,
    phase: String,
    kill: bool,
    first: String,
    after: String,
    ok: bool,
    detail: String,
    secs: f64,
}

async fn run_cell(cell: Cell) -> Row {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let options = LabOptions {
        jump_clients: 5,
        ..LabOptions::default()
    };
    let lab = Arc::new(
        Lab::start(cell.scenario, dir.path(), options)
            .await
            .expect("lab starts"),
    );
    let a_addr = lab.first_address().expect("first appliance").to_string();
    // dns scenarios: a real named the plan updates (TSIG), with its own faults.
    let named = cell.scenario.uses_dns().then(|| {
        Arc::new(Mutex::new(Named::start(&[(
            "access",
            kit::DNS_OLD_TTL,
            "A",
            &a_addr,
        )])))
    });
    let dns = named.as_ref().map(|n| DnsSetup {
        server: lock(n).addr,
        key_name: named::KEY_NAME.into(),
        secret: SecretValue::new(named::KEY_SECRET),
    });
    // nat scenario: a gateway namespace whose real nftables rule sends the VIP to a.
    let gateway = (cell.scenario == Scenario::AsyncNat)
        .then(|| Arc::new(NatGateway::start(&format!("{a_addr}:{}", lab.port))));
    let nat = gateway.as_ref().map(|g| NatSetup {
        public: std::net::SocketAddr::new(
            nat_gateway::VIP.parse().expect("VIP"),
            nat_gateway::VIP_PORT,
        ),
        table: "swing".into(),
        chain: "prerouting".into(),
        netns: Some(g.gw.clone()),
    });
    let plan = write_fast_plan(&lab, dns.as_ref(), nat.as_ref());
    let (set, clear) = injector(cell.fault, &lab, named.as_ref(), gateway.as_ref());
    if let Phase::Start = cell.phase {
        set();
    }
    // The client's view through the shared IP during the first run.
    let probe = lab.shared_ip.map(|ip| {
        let mut cfg = lab.probe_config(Route::Address(ip));
        cfg.interval = Duration::from_millis(200);
        cfg.timeout = Duration::from_secs(1);
        Prober::start(cfg).expect("prober starts")
    });
    let first_run = {
        let (lab, plan) = (lab.clone(), plan.clone());
        tokio::task::spawn_blocking(move || {
            let trigger = match cell.phase {
                Phase::Start => None,
                Phase::At(step) => Some(Trigger {
                    step,
                    on_start: &*set,
                    kill_after: cell.kill.then_some(KILL_AFTER),
                }),
            };
            apply(&lab, &plan, false, trigger, FIRST_RUN_LIMIT)
        })
    };
    let (first, log1, fired) = first_run.await.expect("first run");
    let mut ok = match &first {
        End::Done | End::Halt { .. } => true,
        End::Killed => cell.kill,
        End::Paused | End::Hung | End::Broken(_) => false,
    };
    let mut detail = String::new();
    if !ok {
        detail.push_str(&format!("first run: {}\n{log1}\n", first.short()));
    }
    // A cell whose step never started tested nothing.
    if matches!(cell.phase, Phase::At(_)) && !fired {
        ok = false;
        detail.push_str(&format!("the fault was never switched on\n{log1}\n"));
    }
    if let Some(probe) = probe {
        let report = probe.stop().await;
        let seq = report.sequence();
        let expected = cell.scenario.expected_sequence();
        if !expected.starts_with(&seq.iter().map(String::as_str).collect::<Vec<_>>()) {
            ok = false;
            detail.push_str(&format!(
                "half-swung: the site was served by {} (expected a prefix of {})\n",
                seq.join(" → "),
                expected.join(" → ")
            ));
        }
        let holders: Vec<&str> = lab
            .sims
            .iter()
            .filter(|(_, s)| !s.state().shared_ips.is_empty())
            .map(|(n, _)| n.as_str())
            .collect();
        if holders.len() != 1 {
            ok = false;
            detail.push_str(&format!(
                "shared IP held by {holders:?} after the first run\n"
            ));
        }
    }
    // Never half-swung (dns): the record points at exactly one address (a server that is
    // down is asked once it is back, with the updates it had accepted).
    if cell.fault == "dns-down" {
        clear();
    }
    if let Some(n) = &named {
        let answers = lock(n).dig(kit::SITE, "A");
        if answers.len() != 1 {
            ok = false;
            detail.push_str(&format!("the site resolves to {answers:?}\n"));
        }
    }
    // Never half-swung (nat): at most one rule for the VIP (none while the table is gone).
    if let Some(g) = &gateway {
        let targets = g.vip_targets();
        if targets.len() > 1 {
            ok = false;
            detail.push_str(&format!("the VIP has several DNAT rules: {targets:?}\n"));
        }
    }
    if cell.fault != "dns-down" {
        clear();
    }
    // The operator waits until no install is running before resuming.
    let settled = kit::wait_until(Duration::from_secs(20), || {
        lab.sims
            .iter()
            .all(|(_, s)| s.state().status != ApplianceStatus::Installing)
    })
    .await;
    if !settled {
        ok = false;
        detail.push_str("an appliance was still installing 20 s after the fault was cleared\n");
    }
    let failed_install = cell.fault == "install-fails";
    let after = if matches!(first, End::Done) {
        String::from("—")
    } else {
        // Refused before any step: nothing to resume, so the operator simply applies again.
        let resume = !matches!(&first, End::Halt { step, .. } if step == BEFORE);
        let (second, log2, _) = {
            let (lab, plan) = (lab.clone(), plan.clone());
            tokio::task::spawn_blocking(move || apply(&lab, &plan, resume, None, RESUME_LIMIT))
                .await
                .expect("second run")
        };
        let second_ok = if failed_install {
            // Never retried: the resume halts at the same install (which ran once: see the
            // repeated-action check below).
            matches!((&first, &second), (End::Halt { step: a, .. }, End::Halt { step: b, .. }) if a == b)
        } else {
            matches!(second, End::Done)
        };
        if !second_ok {
            ok = false;
            detail.push_str(&format!("second run: {}\n{log2}\n", second.short()));
        }
        let how = if resume { "resume" } else { "apply again" };
        format!("{how} → {}", second.short())
    };
    if let Some(n) = &named
        && !failed_install
        && matches!(
            (&first, after.as_str()),
            (End::Done, _) | (_, "resume → success") | (_, "apply again → success")
        )
    {
        let b_addr = lab.address("b").expect("second appliance").to_string();
        let answers = lock(n).dig(kit::SITE, "A");
        if answers.len() != 1 || answers[0].value != b_addr {
            ok = false;
            detail.push_str(&format!(
                "the site resolves to {answers:?}, not b ({b_addr})\n"
            ));
        }
    }
    if let Some(g) = &gateway
        && matches!(
            (&first, after.as_str()),
            (End::Done, _) | (_, "resume → success") | (_, "apply again → success")
        )
    {
        let b_target = format!("{}:{}", lab.address("b").expect("b"), lab.port);
        let targets = g.vip_targets();
        if targets != [b_target.clone()] {
            ok = false;
            detail.push_str(&format!(
                "the VIP goes to {targets:?}, not b ({b_target})\n"
            ));
        }
    }
    if !failed_install {
        let problems = lab.check_final_state();
        if !problems.is_empty() {
            ok = false;
            detail.push_str(&format!("final state: {problems:?}\n{log1}\n"));
        }
    }
    let repeated = repeated_actions(&lab);
    if !repeated.is_empty() {
        ok = false;
        detail.push_str(&format!("non-idempotent actions repeated: {repeated:?}\n"));
    }
    drop(lab); // stops the simulators
    Row {
        label: cell.label(),
        scenario: cell.scenario.name(),
        fault: cell.fault,
        phase: cell.phase.label(),
        kill: cell.kill,
        first: first.short(),
        after,
        ok,
        detail,
        secs: t0.elapsed().as_secs_f64(),
    }
}

/// A scenario, the steps its faults are switched on at, its install steps, its switch step.
type ScenarioPhases = (
    Scenario,
    &'static [&'static str],
    &'static [&'static str],
    Option<&'static str>,
);

/// The cells: every fault at every phase where it can act.
fn cells() -> Vec<Cell> {
    use Phase::*;
    use Scenario::*;
    let mut v = Vec::new();
    let mut add = |scenario, fault, phase, kill| {
        v.push(Cell {
            scenario,
            fault,
            phase,
            kill,
        })
    };
    let scenarios: [ScenarioPhases; 3] = [
        (
            SingleAutomatic,
            &[
                "backup.config",
                "main.install",
                "main.online",
                "main.verify",
                "clients.wait",
            ],
            &["main.install"],
            None,
        ),
        (
            Sync,
            &[
                "backup.config",
                "failover.sync",
                "a.install",
                "b.install",
                "failover.establish",
            ],
            &["a.install", "b.install"],
            None,
        ),
        (
            AsyncSharedIp,
            &[
                "backup.config",
                "failover.sync",
                "b.install",
                "switch.to-b",
                "a.install",
                "failover.establish",
            ],
            &["b.install", "a.install"],
            Some("switch.to-b"),
        ),
    ];
    for (s, phases, installs, switch) in scenarios {
        // Transport and token faults: from the start and from each phase on.
        for f in ["http-5xx=0.3", "reset=0.3", "token-down"] {
            add(s, f, Start, false);
            for p in phases {
                add(s, f, At(p), false);
            }
        }
        // On from the start, these stay on through every phase of the run.
        for f in [
            "latency=200",
            "token-expiry=1",
            "clock-skew=600",
            "cert-expiring=5",
        ] {
            add(s, f, Start, false);
        }
        for i in installs {
            add(s, "install-fails", At(i), false);
            add(s, "install-hangs", At(i), false);
        }
        add(s, "clients-never-return", At(installs[0]), false);
        if s.is_pair() {
            add(s, "key-mismatch", Start, false);
            add(s, "key-mismatch", At("failover.keys"), false);
            add(s, "slow-sync=20", At("failover.sync"), false);
            add(s, "slow-sync=20", At("failover.resync"), false);
        }
        // Crash under the fault, in the install and switch phases.
        for i in installs {
            for f in ["install-hangs", "http-5xx=0.3", "token-down"] {
                add(s, f, At(i), true);
            }
        }
        if let Some(sw) = switch {
            for f in ["http-5xx=0.3", "reset=0.3", "token-down"] {
                add(s, f, At(sw), true);
            }
        }
    }
    // DNS faults in the asynchronous DNS scenario (real named). A trigger step is the step
    // BEFORE the one the fault aims at, so the fault is on when that one starts:
    // backup.config → switch.prepare (TTL lowered), b.verify → switch.to-b (the swing),
    // failover.resync → switch.restore (TTL restored).
    add(AsyncDns, "dns-badsig", Start, false);
    for f in ["dns-refused", "dns-down"] {
        for p in ["backup.config", "b.verify", "failover.resync"] {
            add(AsyncDns, f, At(p), false);
        }
    }
    add(AsyncDns, "dns-concurrent-change", Start, false);
    add(AsyncDns, "dns-concurrent-change", At("b.verify"), false);
    add(AsyncDns, "dns-down", At("switch.to-b"), true);
    add(AsyncDns, "http-5xx=0.3", Start, false);
    add(AsyncDns, "token-down", At("switch.to-b"), false);
    // NAT faults in the asynchronous NAT scenario (real nftables in a namespace the test
    // creates); "at b.verify" = on when switch.to-b starts.
    for f in ["nat-missing-table", "nat-netns-gone"] {
        add(AsyncNat, f, Start, false);
        add(AsyncNat, f, At("b.verify"), false);
    }
    v
}

fn print_matrix(rows: &[Row]) {
    println!("| scenario | fault | injected | first run | after clearing the fault |");
    println!("|---|---|---|---|---|");
    for r in rows {
        let phase = if r.kill {
            format!("{} + kill -9", r.phase)
        } else {
            r.phase.clone()
        };
        println!(
            "| {} | `{}` | {} | {} | {} |",
            r.scenario,
            r.fault,
            phase,
            r.first.replace('|', "/").replace('\n', " "),
            r.after.replace('|', "/").replace('\n', " ")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_matrix_every_cell_succeeds_or_halts_safely_then_resumes() {
    let only = std::env::var("SWING_FAULTS_ONLY").unwrap_or_default();
    let cells: Vec<Cell> = cells()
        .into_iter()
        .filter(|c| c.label().contains(only.as_str()))
        .collect();
    assert!(!cells.is_empty(), "no cell matches {only:?}");
    let concurrency: usize = std::env::var("SWING_FAULTS_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let t = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for c in cells {
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            let r = run_cell(c).await;
            eprintln!(
                "cell {} ({:.1} s): {} / {} ok={}",
                r.label, r.secs, r.first, r.after, r.ok
            );
            r
        }));
    }
    let mut rows = Vec::new();
    for task in tasks {
        rows.push(task.await.expect("cell task"));
    }
    println!(
        "{} cells in {:.0} s ({} at a time)",
        rows.len(),
        t.elapsed().as_secs_f64(),
        concurrency
    );
    print_matrix(&rows);
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("{}: {} / {}\n{}", r.label, r.first, r.after, r.detail))
        .collect();
    assert!(
        bad.is_empty(),
        "{} cells neither succeeded nor halted safely and resumed:\n{}",
        bad.len(),
        bad.join("\n\n")
    );
}

/// The guide: a failed install must not be retried and the appliance must not be restarted.
/// The apply halts at the install as soon as the appliance reports the failure (not at a
/// timeout), names the guide's advice and the abort path, and a resume does not install again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_install_halts_at_once_with_the_guides_advice_and_is_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let options = LabOptions {
        jump_clients: 5,
        ..LabOptions::default()
    };
    let lab = Lab::start(Scenario::SingleAutomatic, dir.path(), options)
        .await
        .expect("lab starts");
    let plan = lab.write_plan(None, None).expect("plan written");
    let fault: Fault = "install-fails".parse().expect("fault spec");
    for (_, s) in &lab.sims {
        s.set_fault(fault.clone());
    }
    let (first, log, _) =
        tokio::task::block_in_place(|| apply(&lab, &plan, false, None, Duration::from_secs(60)));
    match &first {
        End::Halt {
            step,
            message,
            abort,
        } => {
            assert_eq!(step, "main.install", "{log}");
            assert!(message.contains("reports"), "{message}");
            assert!(!abort.is_empty(), "{log}");
        }
        other => panic!("expected a safe halt at main.install, got {other:?}\n{log}"),
    }
    assert!(
        log.contains("do NOT restart") || log.contains("do not restart"),
        "the guide's advice is missing:\n{log}"
    );
    // Resume (fault cleared or not): the failed install is not run again.
    for (_, s) in &lab.sims {
        s.set_faults(Faults::default());
    }
    let (_second, log2, _) =
        tokio::task::block_in_place(|| apply(&lab, &plan, true, None, Duration::from_secs(60)));
    assert_eq!(
        installs(&lab),
        1,
        "the install ran again on resume:\n{log2}"
    );
    lab.shutdown().await;
}

/// Runs `script` with bash in a private mount namespace (`unshare -m`), so the tmpfs mounts
/// it makes vanish with it; `args` are `$1…`. Returns (exit code, stdout, stderr).
fn in_mount_namespace(script: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "bash",
            "-c",
            script,
            "bash",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("unshare runs (util-linux; the suite runs as root)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Mounts a tmpfs of `$4` on `$3`, keeps one small file there, fills the rest, runs
/// `swing apply` (plan `$2`, binary `$1`), lists what is left, frees the space and resumes.
/// Everything inside one mount namespace; markers on stdout for the test to parse.
const FULL_DISK_SCRIPT: &str = r#"
set -u
swing=$1; plan=$2; dir=$3; size=$4; free_pages=$5
mkdir -p "$dir"
mount -t tmpfs -o "size=$size,mode=0700" tmpfs "$dir" || { echo "MOUNT-FAILED"; exit 90; }
printf 'previous-backup-bytes' > "$dir/previous.nsb"
chmod 600 "$dir/previous.nsb"
dd if=/dev/zero of="$dir/fill" bs=4096 status=none 2>/dev/null
if [ "$free_pages" -gt 0 ]; then
  truncate -s "-$((free_pages * 4096))" "$dir/fill"
fi
"$swing" apply --auto-approve --output json "$plan" > first.out 2> first.err
echo "FIRST-EXIT=$?"
echo "LISTING-BEGIN"; ls -A "$dir"; echo "LISTING-END"
echo "PREVIOUS=$(cat "$dir/previous.nsb")"
for j in "$dir"/*.journal.jsonl; do [ -f "$j" ] && { echo "JOURNAL-BEGIN"; cat "$j"; echo; echo "JOURNAL-END"; }; done
rm -f "$dir/fill"
"$swing" apply --auto-approve --output json --resume "$plan" > second.out 2> second.err
echo "SECOND-EXIT=$?"
echo "FINAL-BEGIN"; ls -A "$dir"; echo "FINAL-END"
cp -p "$dir"/*.nsb backups-copy/ 2>/dev/null
exit 0
"#;

fn between<'a>(s: &'a str, begin: &str, end: &str) -> &'a str {
    s.split_once(begin)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(x, _)| x)
        .unwrap_or_default()
}

fn marker(s: &str, name: &str) -> Option<i32> {
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.trim().parse().ok())
}

/// What a run of [`FULL_DISK_SCRIPT`] left: the lab, the script's exit code and output, the
/// first run's stdout and stderr, and everything together for assertion messages.
struct FullDiskRun {
    lab: Lab,
    code: Option<i32>,
    out: String,
    first_out: String,
    first_err: String,
    explain: String,
}

/// Starts a single-appliance lab and runs [`FULL_DISK_SCRIPT`] in a private mount namespace
/// with a `size` tmpfs mounted over `mounted(lab dir)` that has `free_pages` pages left.
async fn full_disk_run(
    mounted: impl FnOnce(&Path) -> PathBuf,
    size: &str,
    free_pages: &str,
) -> (tempfile::TempDir, FullDiskRun) {
    let dir = tempfile::tempdir().unwrap();
    let options = LabOptions {
        jump_clients: 5,
        ..LabOptions::default()
    };
    let lab = Lab::start(Scenario::SingleAutomatic, dir.path(), options)
        .await
        .expect("lab starts");
    let plan = write_fast_plan(&lab, None, None);
    std::fs::create_dir_all(lab.dir.join("backups-copy")).unwrap();
    let target = mounted(&lab.dir);
    let script = format!(
        "cd {:?} && export XDG_STATE_HOME={:?} && {FULL_DISK_SCRIPT}",
        lab.dir,
        kit::state_home(&lab.dir)
    );
    let (code, out, err) = tokio::task::block_in_place(|| {
        in_mount_namespace(
            &script,
            &[
                env!("CARGO_BIN_EXE_swing"),
                plan.to_str().unwrap(),
                target.to_str().unwrap(),
                size,
                free_pages,
            ],
        )
    });
    let first_err = std::fs::read_to_string(lab.dir.join("first.err")).unwrap_or_default();
    let first_out = std::fs::read_to_string(lab.dir.join("first.out")).unwrap_or_default();
    let explain = format!(
        "exit {code:?}\n{out}\n{err}\n--- first run\n{first_out}\n{first_err}\n--- second run\n{}\n{}",
        std::fs::read_to_string(lab.dir.join("second.out")).unwrap_or_default(),
        std::fs::read_to_string(lab.dir.join("second.err")).unwrap_or_default()
    );
    let run = FullDiskRun {
        lab,
        code,
        out,
        first_out,
        first_err,
        explain,
    };
    (dir, run)
}

/// A full disk while the configuration backup is written: the apply halts at
/// `backup.config` with the cause, no partial or temporary file is left next to the earlier
/// backup, which is untouched; with space again, `--resume` writes a complete backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_during_the_backup_is_an_error_not_a_corrupt_file() {
    let (_dir, run) = full_disk_run(|d| d.join("backups"), "256k", "0").await;
    let FullDiskRun {
        lab,
        code,
        out,
        first_out,
        explain,
        ..
    } = run;
    assert_eq!(code, Some(0), "{explain}");
    assert_eq!(marker(&out, "FIRST-EXIT"), Some(1), "{explain}");
    let halt = first_out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "finished")
        .map(|v| v["report"]["root_cause"].clone())
        .unwrap_or_default();
    assert_eq!(halt["step"], "backup.config", "{explain}");
    assert!(
        halt["message"]
            .as_str()
            .is_some_and(|m| m.contains("No space left on device")),
        "{explain}"
    );
    // The certificate export runs beside the backup (one group): its file may be there.
    let mut listing: Vec<&str> = between(&out, "LISTING-BEGIN", "LISTING-END")
        .split_whitespace()
        .filter(|f| !f.ends_with("-certificate.pem"))
        .collect();
    listing.sort_unstable();
    assert_eq!(
        listing,
        ["fill", "previous.nsb"],
        "a partial or temporary file was left: {explain}"
    );
    assert!(
        out.contains("PREVIOUS=previous-backup-bytes"),
        "the earlier backup changed: {explain}"
    );
    assert_eq!(marker(&out, "SECOND-EXIT"), Some(0), "{explain}");
    // After the resume: the earlier backup, exactly one new configuration backup, and the
    // certificate the operator step `backup.certificates` exports next to them (it runs only
    // on the resume, since the first run halted before it).
    let mut final_listing: Vec<&str> = between(&out, "FINAL-BEGIN", "FINAL-END")
        .split_whitespace()
        .collect();
    final_listing.sort_unstable();
    let new_backups: Vec<&str> = final_listing
        .iter()
        .copied()
        .filter(|f| f.ends_with(".nsb") && *f != "previous.nsb")
        .collect();
    assert_eq!(new_backups.len(), 1, "one new backup: {explain}");
    let mut expected = vec!["main-certificate.pem", "previous.nsb", new_backups[0]];
    expected.sort_unstable();
    assert_eq!(
        final_listing, expected,
        "previous.nsb, the new backup and the exported certificate only: {explain}"
    );
    // The new backup is complete: byte-identical to what the appliance served.
    std::fs::remove_file(lab.dir.join("backups-copy/previous.nsb")).unwrap();
    let served: Vec<String> = lab
        .sims
        .iter()
        .filter_map(|(_, s)| s.state().backup_sha256)
        .collect();
    let problems = kit::check_backups(&lab.dir.join("backups-copy"), &served);
    assert!(problems.is_empty(), "{problems:?}\n{explain}");
    lab.shutdown().await;
}

/// A full disk while the journal is appended: the apply stops with an error naming the
/// journal (exit 1, never a panic), the journal stays readable, and once there is space
/// again `--resume` finishes the change from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_during_the_journal_is_an_error_and_the_resume_finishes() {
    // One free page: the first page of the journal fits, its second page does not — the disk
    // fills in the middle of the run. (The site lock is no longer in the journal directory but
    // under `$XDG_STATE_HOME/swing/locks`, which the script points outside this file system,
    // so the journal gets the whole free space.)
    let (_dir, run) = full_disk_run(|d| d.join(".swing"), "64k", "1").await;
    let FullDiskRun {
        lab,
        code,
        out,
        first_err,
        explain,
        ..
    } = run;
    assert_eq!(code, Some(0), "{explain}");
    assert_eq!(marker(&out, "FIRST-EXIT"), Some(1), "{explain}");
    assert!(!first_err.contains("panicked"), "{explain}");
    assert!(
        first_err.contains("cannot write the apply journal")
            && first_err.contains("No space left on device"),
        "{explain}"
    );
    // What the journal held when the disk was full: whole records only, and the run got
    // somewhere before it filled (the test is about a full disk in the middle of a run).
    let journal = between(&out, "JOURNAL-BEGIN", "JOURNAL-END");
    let records: Vec<serde_json::Value> = journal
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("partial record {l:?}: {e}\n{explain}"))
        })
        .collect();
    assert!(
        records.iter().any(|r| r["event"] == "step-succeeded"),
        "the disk was full before any step: {explain}"
    );
    assert!(
        out.contains("PREVIOUS=previous-backup-bytes"),
        "a file next to the journal changed: {explain}"
    );
    assert_eq!(marker(&out, "SECOND-EXIT"), Some(0), "{explain}");
    let problems = lab.check_final_state();
    assert!(problems.is_empty(), "{problems:?}\n{explain}");
    assert!(repeated_actions(&lab).is_empty(), "{explain}");
    lab.shutdown().await;
}
