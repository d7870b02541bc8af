//! Every example compiles to exactly the steps of its scenario in
//! `../shared/spec/procedures.md` (ids, kinds, order), and keeps the eight invariants.
//!
//! Must not: reach the network; it goes through the same engine calls as `swing plan --offline`.

use std::path::{Path, PathBuf};

use swing_engine::compile::CompileOptions;
use swing_schema::output::{PlanView, StepKind};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/examples")
}

fn view(name: &str) -> PlanView {
    let checked = swing_engine::validate::check_file(&examples().join(name));
    let plan = checked
        .plan
        .unwrap_or_else(|| panic!("{name}: {:?}", checked.diagnostics));
    swing_engine::view::plan_view(
        &plan,
        &CompileOptions {
            offline: true,
            file: None,
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ids(v: &PlanView) -> Vec<&str> {
    v.steps.iter().map(|s| s.id.as_str()).collect()
}

fn kind(v: &PlanView, id: &str) -> StepKind {
    v.steps
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.kind)
        .unwrap_or_else(|| panic!("no step {id}"))
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

#[test]
fn single_automatic_is_the_guide_order() {
    let v = view("single-automatic.yaml");
    assert_eq!(
        ids(&v),
        words(
            "main.health main.api main.clock main.tls preflight.window backup.config backup.certificates \
             backup.vault-key clients.throttle main.install main.online main.verify \
             main.verify-manual clients.wait clients.followup"
        )
    );
    assert_eq!(kind(&v, "main.install"), StepKind::Operator);
    assert_eq!(kind(&v, "main.online"), StepKind::Wait);
    assert_eq!(kind(&v, "main.verify-manual"), StepKind::Gate);
    let install = v.steps.iter().find(|s| s.id == "main.install").unwrap();
    assert!(
        install
            .instructions
            .iter()
            .any(|l| l.contains("/appliance > Updates"))
    );
    assert!(
        install
            .instructions
            .iter()
            .any(|l| l.contains("Install This Update"))
    );
}

#[test]
fn single_manual_needs_the_clock_before_install() {
    let v = view("single-manual.yaml");
    let install = v.steps.iter().find(|s| s.id == "vault.install").unwrap();
    assert!(
        install.depends_on.iter().any(|d| d == "vault.clock"),
        "{:?}",
        install.depends_on
    );
    assert!(
        install
            .instructions
            .iter()
            .any(|l| l.contains("Appliance Download Key"))
    );
    assert!(
        install
            .instructions
            .iter()
            .any(|l| l.contains("Manual Installation"))
    );
}

#[test]
fn failover_synchronous_is_the_guide_order() {
    let v = view("failover-sync-shared-ip.yaml");
    assert_eq!(
        ids(&v),
        words(
            "a.health a.api a.clock a.tls b.health b.api b.clock b.tls preflight.window backup.config \
             backup.certificates backup.vault-key clients.throttle failover.sync failover.break \
             a.install a.online a.verify a.verify-manual b.install b.online b.verify failover.keys \
             failover.establish failover.resync clients.wait clients.followup"
        )
    );
    // The primary serving the site restarts: downtime; the backup does not cause any.
    let dt: Vec<&str> = v
        .steps
        .iter()
        .filter(|s| s.downtime)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(dt, ["a.install", "a.online"]);
}

#[test]
fn failover_asynchronous_dns_lists_every_step_with_exact_ids() {
    let v = view("failover-async-dns.yaml");
    assert_eq!(
        ids(&v),
        words(
            "east.health east.api east.clock east.tls west.health west.api west.clock west.tls preflight.window \
             backup.config backup.certificates backup.vault-key clients.throttle failover.sync \
             failover.break west.install west.online west.verify west.verify-manual \
             switch.prepare switch.to-west switch.verify-west east.install east.online \
             east.verify failover.keys failover.establish failover.resync switch.restore \
             clients.wait clients.followup"
        )
    );
    assert_eq!(kind(&v, "switch.to-west"), StepKind::Auto);
    // Second window from the old primary's install on.
    let w = |id: &str| {
        v.steps
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.window.clone())
    };
    assert_eq!(w("west.install").as_deref(), Some("first"));
    assert_eq!(w("east.install").as_deref(), Some("second"));
    // dns downtime = the lowered TTL.
    assert_eq!(v.summary.downtime_s, 60);
}

#[test]
fn failover_asynchronous_final_primary_switches_back() {
    let v = view("failover-async-dns-final-a.yaml");
    let i = ids(&v);
    let pos = |id: &str| {
        i.iter()
            .position(|x| *x == id)
            .unwrap_or_else(|| panic!("no {id}"))
    };
    assert!(pos("failover.resync") < pos("failover.promote-a"));
    assert!(pos("failover.promote-a") < pos("switch.to-a"));
    assert!(pos("switch.to-a") < pos("switch.verify-a"));
    assert!(pos("switch.verify-a") < pos("switch.restore"));
    assert!(pos("switch.restore") < pos("clients.wait"));
}

#[test]
fn failover_asynchronous_shared_ip_is_an_operator_switch() {
    let v = view("failover-async-shared-ip.yaml");
    assert_eq!(kind(&v, "switch.to-b"), StepKind::Operator);
    let s = v.steps.iter().find(|s| s.id == "switch.to-b").unwrap();
    assert!(
        s.instructions
            .iter()
            .any(|l| l.contains("/appliance > Networking > IP Configuration"))
    );
    assert!(s.instructions.iter().any(|l| l.contains("IP Enabled")));
    assert!(!ids(&v).contains(&"switch.prepare"));
    let nat = view("failover-async-nat.yaml");
    assert_eq!(kind(&nat, "switch.to-b"), StepKind::Auto);
}

#[test]
fn migration_is_the_guide_order() {
    let v = view("hardware-migration.yaml");
    assert_eq!(
        ids(&v),
        words(
            "new.health preflight.window backup.config backup.vault-key certs.export \
             certs.import certs.default new.install new.online new.restore clients.throttle \
             new.verify switch.prepare switch.to-new switch.verify-new new.verify-manual \
             switch.restore clients.wait clients.followup old.decommission"
        )
    );
    assert_eq!(kind(&v, "old.decommission"), StepKind::Gate);
    // The restore brings the old Jump Client settings back: the throttle is set on the new
    // appliance after it, and the clients are waited for on the new appliance.
    let step = |id: &str| v.steps.iter().find(|s| s.id == id).unwrap();
    assert_eq!(step("clients.throttle").appliance.as_deref(), Some("new"));
    assert_eq!(step("clients.throttle").depends_on, ["new.restore"]);
    assert!(
        step("clients.wait")
            .depends_on
            .contains(&"clients.throttle".to_owned())
    );
    assert_eq!(kind(&v, "new.restore"), StepKind::Operator);
}

#[test]
fn every_example_keeps_the_eight_invariants() {
    let mut n = 0;
    for e in std::fs::read_dir(examples()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().and_then(|x| x.to_str()) != Some("yaml") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let v = view(&name);
        let violations = swing_engine::invariants::check(&v);
        assert!(violations.is_empty(), "{name}: {violations:?}");
        n += 1;
    }
    assert!(n >= 8, "only {n} examples found");
}

#[test]
fn the_checker_catches_a_broken_order() {
    let mut v = view("failover-async-dns.yaml");
    // Let the old primary's install no longer wait for the switch: invariant 4 must fire.
    for s in v.steps.iter_mut().filter(|s| s.id == "east.install") {
        s.depends_on = vec!["failover.break".to_owned(), "backup.config".to_owned()];
    }
    let numbers: Vec<u8> = swing_engine::invariants::check(&v)
        .iter()
        .map(|x| x.number)
        .collect();
    assert!(numbers.contains(&4), "{numbers:?}");
    // A downtime step moved out of every window: invariant 8.
    let mut v = view("single-automatic.yaml");
    for s in v.steps.iter_mut().filter(|s| s.downtime) {
        s.start_s += 30 * 86_400;
    }
    let numbers: Vec<u8> = swing_engine::invariants::check(&v)
        .iter()
        .map(|x| x.number)
        .collect();
    assert!(numbers.contains(&8), "{numbers:?}");
}

/// `X.api` checks exactly the permissions the plan uses on X: the backup where the backup is
/// taken, `set_failover_role` where the plan promotes, the Configuration API where the Jump
/// Clients are waited for at the end.
#[test]
fn each_api_check_asks_for_the_permissions_the_plan_uses_there() {
    use swing_schema::output::{ApiNeed, Condition};
    let needs = |v: &PlanView, x: &str| match &v
        .steps
        .iter()
        .find(|s| s.id == format!("{x}.api"))
        .unwrap_or_else(|| panic!("no {x}.api"))
        .postcondition
    {
        Condition::ApiPermissions { appliance, needs } => {
            assert_eq!(appliance, x);
            needs.clone()
        }
        other => panic!("{x}.api checks {other:?}"),
    };
    use ApiNeed::*;
    let v = view("single-automatic.yaml");
    assert_eq!(needs(&v, "main"), [Backup, ConfigurationRead]);
    // Asynchronous, the backup b serves at the end: a only gives the backup.
    let v = view("failover-async-shared-ip.yaml");
    assert_eq!(needs(&v, "a"), [Backup]);
    assert_eq!(needs(&v, "b"), [ConfigurationRead]);
    // final_primary: a — a is promoted back through the vendor API.
    let v = view("failover-async-dns-final-a.yaml");
    assert_eq!(
        needs(&v, "a"),
        [CommandFullAccess, Backup, ConfigurationRead]
    );
    assert_eq!(needs(&v, "b"), Vec::<ApiNeed>::new());
}
