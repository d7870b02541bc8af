//! Saved plans are trusted only as a whole: an edit to any member (with the old plan-only
//! digest recomputed) is refused by `swing apply` and `swing show --refresh` before any
//! connection — a listener on the edited address must see none; the embedded plan is validated
//! like a plan file; `--require-signature` applies only what the approver's key signed; and
//! `swing plan --out` never overwrites an input plan file. Against in-process simulators
//! (fast time scale) and the real `swing` binary.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
use swing_engine::planfile::{SavedPlan, plan_digest};
use swing_testkit::kit::{Lab, LabOptions, Scenario};

async fn swing(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_swing"));
    c.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("SWING_REQUIRE_SIGNATURE")
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(180), c.output())
        .await
        .expect("swing finished")
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `swing plan --out OUT PLAN [extra]` against the lab; the saved plan.
async fn plan_out(lab: &Lab, plan: &Path, out: &str, extra: &[&str]) -> SavedPlan {
    let mut args = vec!["plan", "--out", out];
    args.extend_from_slice(extra);
    let plan = plan.to_str().unwrap();
    args.push(plan);
    let o = swing(&lab.dir, &args, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    SavedPlan::read(&lab.dir.join(out)).unwrap()
}

/// A listener on 127.0.0.1 that an edited saved plan points at; it must never be connected to.
fn listener() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

fn assert_no_connection(l: &TcpListener, what: &str) {
    match l.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("{what}: the edited address was contacted (from {peer})"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Points appliance `name` of `saved` at the listener.
fn point_at(saved: &mut SavedPlan, name: &str, l: &TcpListener) {
    let a = saved.plan.appliances.get_mut(name).unwrap();
    a.address = "127.0.0.1".into();
    a.port = l.local_addr().unwrap().port();
}

/// How many actions appliance `name`'s simulator has recorded so far (it records its own
/// `start` when it boots, and `swing plan` may read from it during the setup).
fn actions_so_far(lab: &Lab, name: &str) -> usize {
    lab.sim(name).unwrap().state().actions.len()
}

/// Fails if appliance `name`'s simulator recorded any action after the first `before`.
fn assert_no_new_actions(lab: &Lab, name: &str, before: usize, what: &str) {
    let actions = lab.sim(name).unwrap().state().actions;
    let new = actions.get(before..).unwrap_or_default();
    assert!(new.is_empty(), "{what} touched the appliance: {new:?}");
}

/// What an editor who knows only the plan-only digest writes.
fn write_edited(mut saved: SavedPlan, path: &Path) {
    saved.plan_digest = plan_digest(&saved.plan);
    saved.write(path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edit_to_any_member_is_refused_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::SingleAutomatic, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let plan_path = lab.write_plan(None, None).unwrap();
    let saved = plan_out(&lab, &plan_path, "change.plan", &[]).await;
    assert!(saved.has_changes && saved.is_intact());
    let appliance = saved.plan.appliances.keys().next().unwrap().clone();
    // What the appliance recorded before the commands under test (its start, the planning).
    let before = actions_so_far(&lab, &appliance);
    let elsewhere = tempfile::tempdir().unwrap();

    type Edit = Box<dyn Fn(&mut SavedPlan)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("base_dir", {
            let d = elsewhere.path().to_path_buf();
            Box::new(move |s: &mut SavedPlan| s.base_dir = d.clone()) as Edit
        }),
        (
            "drift",
            Box::new(|s: &mut SavedPlan| s.drift.push("appliance is unhealthy".into())) as Edit,
        ),
        (
            "steps",
            Box::new(|s: &mut SavedPlan| s.steps.truncate(1)) as Edit,
        ),
        (
            "fingerprint",
            Box::new(|s: &mut SavedPlan| {
                for facts in s.fingerprint.resources.values_mut() {
                    facts.insert("version".into(), "1.0.0".into());
                }
            }) as Edit,
        ),
        (
            "view",
            Box::new(|s: &mut SavedPlan| s.view["summary"]["line"] = "nothing to see".into())
                as Edit,
        ),
    ];
    for (member, edit) in &edits {
        let l = listener();
        let mut edited = saved.clone();
        // Every edit also points the appliance at the listener: whatever member was edited,
        // nothing may be contacted.
        point_at(&mut edited, &appliance, &l);
        edit(&mut edited);
        let path = lab.dir.join(format!("edited-{member}.plan"));
        write_edited(edited, &path);
        let p = path.to_str().unwrap();

        let o = swing(&lab.dir, &["apply", "--output", "json", p], &[]).await;
        assert_eq!(o.status.code(), Some(1), "{member}: {}", text(&o));
        assert!(
            text(&o).contains("modified after it was written (digest mismatch)")
                && text(&o).contains("nothing was contacted"),
            "{member}: {}",
            text(&o)
        );
        assert_no_connection(&l, &format!("apply, edited {member}"));

        let o = swing(&lab.dir, &["show", "--refresh", p], &[]).await;
        assert_eq!(o.status.code(), Some(0), "{member}: {}", text(&o));
        assert!(text(&o).contains("MODIFIED:"), "{member}: {}", text(&o));
        assert!(!text(&o).contains("Current:"), "{member}: {}", text(&o));
        assert_no_connection(&l, &format!("show --refresh, edited {member}"));
    }
    // The address alone, too.
    let l = listener();
    let mut edited = saved.clone();
    point_at(&mut edited, &appliance, &l);
    let path = lab.dir.join("edited-plan.plan");
    write_edited(edited, &path);
    let o = swing(&lab.dir, &["apply", path.to_str().unwrap()], &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("digest mismatch"), "{}", text(&o));
    let o = swing(
        &lab.dir,
        &["show", "--refresh", path.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(text(&o).contains("MODIFIED:"), "{}", text(&o));
    assert_no_connection(&l, "edited address");
    // Nothing was done on the real appliance either.
    assert_no_new_actions(&lab, &appliance, before, "an edited plan");
    lab.shutdown().await;
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/examples/single-automatic.yaml")
}

#[tokio::test]
async fn the_embedded_plan_is_validated_like_a_plan_file_before_apply_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("plans");
    std::fs::create_dir(&work).unwrap();
    let mut plan = swing_engine::validate::check_file(&example())
        .plan
        .map(|p| (*p).clone())
        .unwrap();
    plan.name = "../../escaped".into();
    plan.site = "../../escaped-site".into();
    // Sealed correctly: only validation stands between this plan and the state directory.
    let saved = SavedPlan::new(
        &plan,
        "plan.yaml",
        &work,
        false,
        vec!["b.install".into()],
        vec![],
        Default::default(),
        serde_json::Value::Null,
    );
    assert!(saved.is_intact());
    let path = work.join("bad.plan");
    saved.write(&path).unwrap();
    let o = swing(&work, &["apply", "bad.plan"], &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("the plan embedded in bad.plan is not valid"),
        "{}",
        text(&o)
    );
    let o = swing(&work, &["show", "bad.plan"], &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is not valid"), "{}", text(&o));
    // Nothing was written outside the state directory (nor anywhere but the saved plan).
    let mut left: Vec<_> = walk(dir.path());
    left.sort();
    assert_eq!(left, vec![path], "files after the refused apply");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn plan_out_refuses_to_overwrite_an_input_plan_also_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("x.yaml");
    std::fs::copy(example(), &plan).unwrap();
    let before = std::fs::read(&plan).unwrap();
    std::os::unix::fs::symlink(&plan, dir.path().join("link.plan")).unwrap();
    std::fs::hard_link(&plan, dir.path().join("hard.plan")).unwrap();
    for out in ["x.yaml", "./x.yaml", "link.plan", "hard.plan"] {
        let o = swing(
            dir.path(),
            &["plan", "--offline", "--out", out, "x.yaml"],
            &[],
        )
        .await;
        assert_eq!(o.status.code(), Some(1), "--out {out}: {}", text(&o));
        assert!(
            text(&o).contains("saving would overwrite it"),
            "--out {out}: {}",
            text(&o)
        );
        assert_eq!(std::fs::read(&plan).unwrap(), before, "--out {out}");
    }
    // A directory input: its plan file is an input as well.
    let o = swing(
        dir.path(),
        &["plan", "--offline", "--out", "x.yaml", "."],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read(&plan).unwrap(), before);
    // Another name is fine.
    let o = swing(
        dir.path(),
        &["plan", "--offline", "--out", "change.plan", "x.yaml"],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(SavedPlan::read(&dir.path().join("change.plan")).is_ok());
}

/// A test signing key from a fixed seed: (private PKCS#8 PEM, public SPKI PEM).
fn key(seed: u8) -> (String, String) {
    let k = SigningKey::from_bytes(&[seed; 32]);
    (
        k.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn require_signature_refuses_unsigned_foreign_and_re_signed_plans_and_applies_a_signed_one() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::SingleAutomatic, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let plan_path = lab.write_plan(None, None).unwrap();
    let (approver, approver_pub) = key(1);
    let (other, _) = key(2);
    std::fs::write(lab.dir.join("approver.pem"), &approver).unwrap();
    std::fs::write(lab.dir.join("approver.pub"), &approver_pub).unwrap();
    let require = ["apply", "--require-signature", "approver.pub"];

    let signed = plan_out(
        &lab,
        &plan_path,
        "signed.plan",
        &["--sign", "${file:approver.pem}"],
    )
    .await;
    let fingerprint = signed.signature.as_ref().unwrap().fingerprint.clone();
    assert!(fingerprint.starts_with("SHA256:"));
    let saved_text = std::fs::read_to_string(lab.dir.join("signed.plan")).unwrap();
    assert!(!saved_text.contains("PRIVATE KEY"), "the key is not stored");
    let o = swing(
        &lab.dir,
        &[
            "plan",
            "--out",
            "other.plan",
            "--sign",
            "${env:OTHER_KEY}",
            plan_path.to_str().unwrap(),
        ],
        &[("OTHER_KEY", other.as_str())],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    plan_out(&lab, &plan_path, "unsigned.plan", &[]).await;

    // `swing show` says who signed and that it verifies.
    let o = swing(&lab.dir, &["show", "signed.plan"], &[]).await;
    assert!(
        text(&o).contains(&format!("Signed by {fingerprint}: the signature verifies.")),
        "{}",
        text(&o)
    );

    // What the appliance recorded before the applies under test (its start, the planning).
    let appliance = signed.plan.appliances.keys().next().unwrap().clone();
    let before = actions_so_far(&lab, &appliance);

    // Unsigned.
    let o = swing(
        &lab.dir,
        &[&require[..], &["unsigned.plan"][..]].concat(),
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is not signed"), "{}", text(&o));
    // Signed by another key.
    let o = swing(&lab.dir, &[&require[..], &["other.plan"][..]].concat(), &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not by the required key"), "{}", text(&o));
    // Edited (pointed at a listener) and re-signed by another key, digest recomputed.
    let l = listener();
    let mut edited = signed.clone();
    point_at(&mut edited, &appliance, &l);
    edited.plan_digest = plan_digest(&edited.plan);
    edited.seal();
    swing_engine::signing::sign(&mut edited, &swing_schema::SecretValue::new(other.as_str()))
        .unwrap();
    edited.write(&lab.dir.join("resigned.plan")).unwrap();
    let o = swing(
        &lab.dir,
        &[&require[..], &["resigned.plan"][..]].concat(),
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not by the required key"), "{}", text(&o));
    // Edited, digest recomputed, the approver's signature kept: it no longer verifies.
    let mut edited = signed.clone();
    point_at(&mut edited, &appliance, &l);
    edited.plan_digest = plan_digest(&edited.plan);
    edited.digest = edited.compute_digest();
    edited.write(&lab.dir.join("kept.plan")).unwrap();
    let o = swing(&lab.dir, &["apply", "kept.plan"], &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("does not verify"), "{}", text(&o));
    let o = swing(&lab.dir, &["show", "kept.plan"], &[]).await;
    assert!(text(&o).contains("BAD SIGNATURE"), "{}", text(&o));
    assert_no_connection(&l, "re-signed or edited signed plans");
    assert_no_new_actions(
        &lab,
        &appliance,
        before,
        "an unsigned, foreign, re-signed or edited plan",
    );

    // The approver's plan applies, the key given through the environment as PEM text.
    let o = swing(
        &lab.dir,
        &["apply", "--output", "json", "signed.plan"],
        &[("SWING_REQUIRE_SIGNATURE", approver_pub.as_str())],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        lab.check_final_state().is_empty(),
        "{:?}",
        lab.check_final_state()
    );
    lab.shutdown().await;
}
