//! Two simulators as a failover pair, all via HTTP: establish, sync, break, install on B
//! (unreachable meanwhile), switch the shared IP, establish reversed; the shared address
//! answers as A before and as B after.

mod common;

use common::*;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use swing_sim::Role;

const KEY: &str = "pair-psk-for-tests";

#[tokio::test]
async fn asynchronous_failover_upgrade_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let pfx = loopback_prefix();
    let a_ip: std::net::IpAddr = format!("{pfx}.11").parse().unwrap();
    let b_ip: std::net::IpAddr = format!("{pfx}.12").parse().unwrap();
    let shared_ip: std::net::IpAddr = format!("{pfx}.10").parse().unwrap();

    // A first (port 0), B on the same port at its own address: the shared IP uses that port.
    let mut ca = config("a", dir.path());
    ca.listen = SocketAddr::new(a_ip, 0);
    ca.update_to = Some("25.1.3".into());
    ca.key = Some(KEY.into());
    ca.shared_ip = Some(shared_ip);
    let a = start(ca).await;
    let port = a.addr().port();
    let mut cb = config("b", dir.path());
    cb.listen = SocketAddr::new(b_ip, port);
    cb.update_to = Some("25.1.3".into());
    cb.key = Some(KEY.into());
    let b = start(cb).await;
    let shared = SocketAddr::new(shared_ip, port);
    let http = client(&a);
    let site = site_client(&a, "access.example.test", shared);
    let site_url = format!("https://access.example.test:{port}");

    // The shared address answers as A.
    assert_eq!(
        health_id(&site, &site_url).await.as_deref(),
        Some(a.appliance_id())
    );

    // Establish A primary, B backup.
    let (s, v) = sim_post(
        &http,
        &a.url(),
        "/_sim/establish",
        json!({ "backup_address": b.addr().to_string() }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, a_role, _, _) = health(&http, &a.url()).await.unwrap();
    let (_, b_role, _, _) = health(&http, &b.url()).await.unwrap();
    assert_eq!((a_role.as_str(), b_role.as_str()), ("primary", "backup"));

    // Sync now: B's last_data_sync_time appears / advances.
    let (s, v) = sim_post(&http, &a.url(), "/_sim/sync-now", json!({ "wait": true })).await;
    assert_eq!(s, 200, "{v}");
    let (_, _, _, b_sync) = health(&http, &b.url()).await.unwrap();
    assert!(b_sync.is_some(), "backup reports a sync time");

    // Break: both report role none.
    let (s, _) = sim_post(&http, &a.url(), "/_sim/break", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(health(&http, &a.url()).await.unwrap().1, "none");
    assert_eq!(health(&http, &b.url()).await.unwrap().1, "none");

    // Install on B: unreachable during the install, back on the new version after it, with
    // every API session dropped.
    let old_token = token(&http, &b.url()).await;
    let (s, v) = sim_post(
        &http,
        &b.url(),
        "/_sim/install",
        json!({ "packages": ["base-7.2.1", "pra-25.1.3"] }),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let refused = http.get(format!("{}/check_health", b.url())).send().await;
    assert!(
        refused.is_err_and(|e| e.is_connect()),
        "B refuses connections while installing"
    );
    let version = eventually(Duration::from_secs(20), "B back on 25.1.3", || async {
        health(&http, &b.url())
            .await
            .map(|h| h.0)
            .filter(|v| v.starts_with("25.1.3"))
    })
    .await;
    assert!(version.starts_with("25.1.3 "));
    let stale = http
        .get(format!("{}/api/command?action=check_health", b.url()))
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        401,
        "tokens from before the install are gone"
    );
    let actions: Vec<String> = b.state().actions.iter().map(|a| a.action.clone()).collect();
    assert!(
        actions.contains(&"install.started".to_string())
            && actions.contains(&"install.finished".to_string())
    );

    // Switch the shared IP from A to B: B cannot take it while A still holds it.
    let (s, v) = sim_post(
        &http,
        &b.url(),
        "/_sim/shared-ip",
        json!({ "address": shared_ip, "enabled": true }),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = sim_post(
        &http,
        &a.url(),
        "/_sim/shared-ip",
        json!({ "address": shared_ip, "enabled": false }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = sim_post(
        &http,
        &b.url(),
        "/_sim/shared-ip",
        json!({ "address": shared_ip, "enabled": true }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        health_id(&site, &site_url).await.as_deref(),
        Some(b.appliance_id())
    );

    // Establishing B primary while A is still old is refused (version mismatch) ...
    let (s, v) = sim_post(
        &http,
        &b.url(),
        "/_sim/establish",
        json!({ "backup_address": a.addr().to_string() }),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("version mismatch"),
        "{v}"
    );
    // ... so upgrade A too, then establish reversed.
    let (s, _) = sim_post(
        &http,
        &a.url(),
        "/_sim/install",
        json!({ "version": "25.1.3" }),
    )
    .await;
    assert_eq!(s, 202);
    eventually(Duration::from_secs(20), "A back on 25.1.3", || async {
        health(&http, &a.url())
            .await
            .map(|h| h.0)
            .filter(|v| v.starts_with("25.1.3"))
    })
    .await;
    let (s, v) = sim_post(
        &http,
        &b.url(),
        "/_sim/establish",
        json!({ "backup_address": a.addr().to_string() }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(b.state().role, Role::Primary);
    assert_eq!(a.state().role, Role::Backup);
    // The first sync after establishing happens by itself (60 simulated seconds).
    eventually(Duration::from_secs(10), "first sync reaches A", || async {
        health(&http, &a.url()).await.and_then(|h| h.3)
    })
    .await;
    assert_eq!(
        health_id(&site, &site_url).await.as_deref(),
        Some(b.appliance_id())
    );

    // set_failover_role through the vendor API swaps the roles on both.
    let tok = token(&http, &a.url()).await;
    let body = http
        .post(format!("{}/api/command", a.url()))
        .bearer_auth(&tok)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("action=set_failover_role&role=primary&data_sync_first=0")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("Successfully changed role."), "{body}");
    assert_eq!(a.state().role, Role::Primary);
    assert_eq!(b.state().role, Role::Backup);
    a.shutdown().await;
    b.shutdown().await;
}

async fn set_role(http: &reqwest::Client, base: &str, form: &str) -> String {
    let tok = token(http, base).await;
    http.post(format!("{base}/api/command"))
        .bearer_auth(&tok)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("action=set_failover_role&{form}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn set_failover_role_data_sync_first_and_force() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = config("a", dir.path());
    ca.key = Some(KEY.into());
    let a = start(ca).await;
    let mut cb = config("b", dir.path());
    cb.key = Some(KEY.into());
    cb.role = Role::Backup;
    cb.peer = Some(a.addr());
    let b = start(cb).await;
    let http = client(&a);
    let (s, v) = sim_post(
        &http,
        &a.url(),
        "/_sim/establish",
        json!({ "backup_address": b.addr().to_string() }),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // B asks to become primary after a sync: answered at once, roles change after the sync.
    let body = set_role(&http, &b.url(), "role=primary&data_sync_first=1").await;
    assert!(
        body.contains(
            "Successfully started data sync. Role change will occur upon successful completion."
        ),
        "{body}"
    );
    eventually(
        Duration::from_secs(10),
        "roles swapped after the sync",
        || async {
            (b.state().role == Role::Primary && a.state().role == Role::Backup).then_some(())
        },
    )
    .await;
    assert!(a.state().last_data_sync_unix.is_some());

    // With the peer gone, the primary can only become backup with force=1.
    a.shutdown().await;
    let body = set_role(&http, &b.url(), "role=backup").await;
    assert!(body.contains("<error"), "{body}");
    let body = set_role(&http, &b.url(), "role=backup&force=1").await;
    assert!(body.contains("Successfully changed role."), "{body}");
    assert_eq!(b.state().role, Role::Backup);
}
