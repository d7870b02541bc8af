//! The Rego policies of `examples/policy/` evaluated by a real Rego engine (regorus) on the JSON
//! plan view that `swing plan --offline --format json` prints: every example plan is allowed by
//! every policy, and each plan that breaks one rule is denied by that policy alone, with a
//! message that names the plan and the cause. The plans that must be denied are real swing
//! output of modified example plans wherever swing can produce the breach; the one view that
//! swing never prints (a downtime step bound to no window) is a real view with one member
//! removed.
//!
//! Must not: reach the network or write outside a temp dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// The policy files of `examples/policy/`, without `.rego`.
const POLICIES: [&str; 3] = ["unprotected", "downtime_windows", "async_windows"];

/// 3 days, the stricter limit `docs/policy.md` shows.
const THREE_DAYS_S: u64 = 259_200;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The JSON plan view of `plan` and swing's exit code.
fn view(plan: &Path) -> (Option<i32>, Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_swing"))
        .args(["plan", "--offline", "--format", "json"])
        .arg(plan)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON plan view ({e}); stderr:\n{}",
            plan.display(),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code(), v)
}

/// The view of a plan swing accepts (exit 0).
fn accepted_view(plan: &Path) -> Value {
    let (code, v) = view(plan);
    assert_eq!(code, Some(0), "{}: swing plan failed", plan.display());
    v
}

/// `data.main.deny` of one policy for `input`, with `data` added when given.
fn deny(policy: &str, input: &Value, data: Option<&Value>) -> Vec<String> {
    let path = root().join(format!("examples/policy/{policy}.rego"));
    let rego = std::fs::read_to_string(&path).unwrap();
    let mut engine = regorus::Engine::new();
    engine
        .add_policy(path.display().to_string(), rego)
        .unwrap_or_else(|e| panic!("{policy}.rego does not compile: {e}"));
    if let Some(d) = data {
        engine.add_data_json(&d.to_string()).unwrap();
    }
    engine.set_input_json(&input.to_string()).unwrap();
    let result = engine
        .eval_rule("data.main.deny".to_owned())
        .unwrap_or_else(|e| panic!("{policy}.rego: data.main.deny fails: {e}"));
    let set = result
        .as_set()
        .unwrap_or_else(|_| panic!("{policy}.rego: data.main.deny is {result}, not a set"));
    set.iter()
        .map(|m| {
            m.as_string()
                .expect("a deny message is a string")
                .to_string()
        })
        .collect()
}

/// Every policy's deny messages for `input`.
fn denials(input: &Value, data: Option<&Value>) -> BTreeMap<&'static str, Vec<String>> {
    POLICIES
        .iter()
        .map(|&p| (p, deny(p, input, data)))
        .collect()
}

/// Asserts that `policy` alone denies `input` (described by `case`), and returns its messages.
fn denied_by_alone(case: &str, policy: &str, input: &Value, data: Option<&Value>) -> Vec<String> {
    let all = denials(input, data);
    for (p, msgs) in &all {
        if *p == policy {
            assert!(!msgs.is_empty(), "{case}: {policy}.rego allows it");
        } else {
            assert!(msgs.is_empty(), "{case}: {p}.rego denies it: {msgs:#?}");
        }
    }
    all[policy].clone()
}

fn example_plans() -> Vec<PathBuf> {
    let mut plans: Vec<PathBuf> = std::fs::read_dir(root().join("plans/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    plans.sort();
    assert!(
        plans.len() >= 8,
        "the example plans went missing: {plans:?}"
    );
    plans
}

fn is_async(v: &Value) -> bool {
    v["plan"]["scenario"] == "failover-asynchronous"
}

/// A copy of the example plan `name` in `dir`, with `edit` applied to its text. Relative paths
/// of the plan (backup directory, `${file:…}`) resolve against `dir` then; an offline plan reads
/// none of them.
fn modified_example(dir: &Path, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(root().join("plans/examples").join(name)).unwrap();
    let changed = edit(&text);
    assert_ne!(changed, text, "{name}: the edit changed nothing");
    let path = dir.join(name);
    std::fs::write(&path, changed).unwrap();
    path
}

/// The plan text without its window named `second` (one line in every example).
fn without_second_window(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("{ name: second,"))
        .collect();
    assert_eq!(kept.len() + 1, text.lines().count(), "one window line");
    kept.join("\n") + "\n"
}

#[test]
fn every_example_plan_is_allowed_by_every_policy() {
    let mut asynchronous = 0;
    for plan in example_plans() {
        let v = accepted_view(&plan);
        asynchronous += usize::from(is_async(&v));
        for (policy, msgs) in denials(&v, None) {
            assert!(
                msgs.is_empty(),
                "{}: {policy}.rego denies an example plan: {msgs:#?}",
                plan.display()
            );
        }
    }
    assert!(asynchronous >= 4, "{asynchronous} asynchronous examples");
}

#[test]
fn an_asynchronous_plan_with_one_window_is_denied_by_async_windows_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for plan in example_plans() {
        let v = accepted_view(&plan);
        if !is_async(&v) {
            continue;
        }
        assert_eq!(
            v["windows"].as_array().unwrap().len(),
            2,
            "{}",
            plan.display()
        );
        let name = plan.file_name().unwrap().to_str().unwrap();
        // swing accepts it with a warning: both upgrades are scheduled in the one window.
        let one = accepted_view(&modified_example(dir.path(), name, without_second_window));
        assert_eq!(one["windows"].as_array().unwrap().len(), 1);
        let msgs = denied_by_alone(
            &format!("{name} with one window"),
            "async_windows",
            &one,
            None,
        );
        let plan_name = v["plan"]["name"].as_str().unwrap();
        assert_eq!(
            msgs,
            [format!(
                "plan {plan_name} is an asynchronous failover upgrade with 1 maintenance window(s); it needs two"
            )]
        );
        checked += 1;
    }
    assert!(checked >= 4, "{checked} asynchronous examples");
}

#[test]
fn unprotected_time_over_the_limit_is_denied_by_unprotected_alone() {
    // The windows of this example are a week apart: the pair runs unprotected for over 7 days,
    // under the policy's default limit (8 days) and over a limit of 3 days.
    let v = accepted_view(&root().join("plans/examples/failover-async-nat.yaml"));
    let unprotected = v["summary"]["unprotected_s"].as_u64().unwrap();
    assert!(
        unprotected > 7 * 86_400 && unprotected < 8 * 86_400,
        "{unprotected}"
    );
    let limit = |s: u64| json!({ "swing": { "max_unprotected_s": s } });

    for (policy, msgs) in denials(&v, None) {
        assert!(msgs.is_empty(), "{policy}.rego, default limit: {msgs:#?}");
    }
    let msgs = denied_by_alone(
        "a 3-day limit",
        "unprotected",
        &v,
        Some(&limit(THREE_DAYS_S)),
    );
    assert_eq!(
        msgs,
        [format!(
            "plan access-25-1-async-nat leaves the pair unprotected for {unprotected} s; at most {THREE_DAYS_S} s are allowed"
        )]
    );
    // The limit itself is allowed, one second less is not.
    assert!(deny("unprotected", &v, Some(&limit(unprotected))).is_empty());
    assert_eq!(
        deny("unprotected", &v, Some(&limit(unprotected - 1))).len(),
        1
    );
}

#[test]
fn a_downtime_step_bound_to_no_window_is_denied_by_downtime_windows_alone() {
    // swing binds every step of a plan with windows to one of them, so no plan makes it print
    // a downtime step without `window`: the view is a real one with that member removed (as a
    // view from another tool, or a hand-edited one, may have it), or set to null (the schema
    // allows null).
    let v = accepted_view(&root().join("plans/examples/failover-async-nat.yaml"));
    let steps = v["steps"].as_array().unwrap();
    let i = steps.iter().position(|s| s["id"] == "switch.to-b").unwrap();
    assert_eq!(steps[i]["downtime"], true);
    assert_eq!(steps[i]["window"], "first");
    for unbound in [None, Some(Value::Null)] {
        let mut edited = v.clone();
        let step = edited["steps"][i].as_object_mut().unwrap();
        match &unbound {
            None => step.remove("window"),
            Some(null) => step.insert("window".into(), null.clone()),
        };
        let msgs = denied_by_alone(
            &format!("window {unbound:?}"),
            "downtime_windows",
            &edited,
            None,
        );
        assert_eq!(
            msgs,
            [
                "plan access-25-1-async-nat: step switch.to-b takes the site down outside every maintenance window"
            ],
            "window {unbound:?}"
        );
    }
}

#[test]
fn downtime_scheduled_past_its_window_is_denied_by_downtime_windows_alone() {
    // The single-appliance example with its four-hour window cut to 45 minutes: swing still
    // prints the view (and exits 1 on its own downtime-outside-window finding); the install
    // runs past the window's end and the restart starts after it.
    let dir = tempfile::tempdir().unwrap();
    let plan = modified_example(dir.path(), "single-automatic.yaml", |text| {
        text.replace(
            "end: 2026-12-06T02:00:00+01:00",
            "end: 2026-12-05T22:45:00+01:00",
        )
    });
    let (code, v) = view(&plan);
    assert_eq!(code, Some(1));
    assert_eq!(v["windows"][0]["duration_s"], 2700);
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "downtime-outside-window"),
        "{:#}",
        v["findings"]
    );
    let mut msgs = denied_by_alone("a 45-minute window", "downtime_windows", &v, None);
    msgs.sort();
    assert_eq!(
        msgs,
        [
            "plan access-25-1-single: step main.install takes the site down from 630 s to 3330 s, outside its maintenance window saturday-night",
            "plan access-25-1-single: step main.online takes the site down from 3330 s to 3930 s, outside its maintenance window saturday-night",
        ]
    );
}
