//! The `/_sim` operator automation beyond the pair: certificates (export, import, default),
//! backup restore, factory reset, Vault key, Jump Client throttle and follow-up, the action
//! log, and a shared CA created concurrently.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn migration_certificates_backup_restore_and_decommission() {
    let dir = tempfile::tempdir().unwrap();
    let mut cold = config("old", dir.path());
    cold.jump_clients = 7;
    let old = start(cold).await;
    let mut cnew = config("new", dir.path());
    cnew.client_id = "factory-default".into();
    cnew.client_secret = "other".into();
    let new = start(cnew).await;
    let http = client(&old);

    // Backup from old with a password.
    let tok = token(&http, &old.url()).await;
    let blob = http
        .post(format!("{}/api/backup", old.url()))
        .bearer_auth(&tok)
        .json(&json!({ "password": "pw" }))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    // Export old's certificate, import it on new, make it the default.
    let (s, exp) = sim_post(
        &http,
        &old.url(),
        "/_sim/certificates/export",
        json!({ "passphrase": "p" }),
    )
    .await;
    assert_eq!(s, 200, "{exp}");
    let fp = exp["leaf_sha256"].as_str().unwrap().to_string();
    let (s, v) = sim_post(
        &http,
        &new.url(),
        "/_sim/certificates/import",
        json!({ "bundle_pem": exp["bundle_pem"], "passphrase": "p" }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = sim_post(
        &http,
        &new.url(),
        "/_sim/certificates/default",
        json!({ "leaf_sha256": fp }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // A client reaching the site name at new's address now sees old's leaf.
    let site = site_client(&new, "access.example.test", new.addr());
    let port = new.addr().port();
    let r = site
        .get(format!("https://access.example.test:{port}/check_health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        new.state()
            .certificates
            .iter()
            .any(|c| c.default && c.leaf_sha256 == fp)
    );

    // Restore: wrong password refused, right one brings old's API account to new.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let (s, _) = sim_post(
        &http,
        &new.url(),
        "/_sim/restore",
        json!({ "backup_base64": b64, "password": "no" }),
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = sim_post(
        &http,
        &new.url(),
        "/_sim/restore",
        json!({ "backup_base64": b64, "password": "pw" }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    token(&http, &new.url()).await; // old's client id + secret authenticate on new
    assert_eq!(new.state().jump_clients.total, 7);

    // Other operator actions are logged.
    for (path, body) in [
        ("/_sim/vault-key", json!({})),
        (
            "/_sim/clients/throttle",
            json!({ "max_concurrent_upgrades": 25 }),
        ),
        ("/_sim/clients/followup", json!({})),
    ] {
        let (s, v) = sim_post(&http, &new.url(), path, body).await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    let st = new.state();
    assert!(st.vault_key_backed_up);
    assert_eq!(st.jump_clients.throttle, 25);
    let names: Vec<&str> = st.actions.iter().map(|a| a.action.as_str()).collect();
    for a in [
        "certificates.import",
        "certificates.default",
        "backup.restore",
        "vault-key.backup",
        "clients.followup",
    ] {
        assert!(names.contains(&a), "{a} logged: {names:?}");
    }
    assert!(
        st.actions
            .iter()
            .all(|a| !a.at.is_empty() && a.at_unix_ms > 0)
    );

    // Decommission old: factory reset and power off; the API account is gone, then nothing answers.
    let (s, _) = sim_post(
        &http,
        &old.url(),
        "/_sim/factory-reset",
        json!({ "power_off": true }),
    )
    .await;
    assert_eq!(s, 200);
    eventually(Duration::from_secs(5), "old powered off", || async {
        http.get(format!("{}/check_health", old.url()))
            .send()
            .await
            .is_err()
            .then_some(())
    })
    .await;
    assert!(old.state().api_account.is_none());
}

#[tokio::test]
async fn concurrent_starts_share_one_ca() {
    let dir = tempfile::tempdir().unwrap();
    let starts = (0..6).map(|i| {
        let cfg = config(&format!("s{i}"), dir.path());
        tokio::spawn(async move { swing_sim::Simulator::start(cfg).await })
    });
    let mut sims = Vec::new();
    for s in starts {
        sims.push(s.await.unwrap().unwrap());
    }
    let pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    for s in &sims {
        assert_eq!(s.ca_pem(), pem);
        // One CA file verifies every simulator.
        let r = client(&sims[0])
            .get(format!("{}/check_health", s.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn drop_stops_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let url = sim.url();
    let http = client(&sim);
    drop(sim);
    eventually(Duration::from_secs(5), "listener closed", || async {
        http.get(format!("{url}/check_health"))
            .send()
            .await
            .is_err()
            .then_some(())
    })
    .await;
}
