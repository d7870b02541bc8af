//! One test per fault knob, each showing the fault as a client observes it.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use swing_sim::{Fault, SimConfig};

fn fast(mut c: SimConfig) -> SimConfig {
    c.update_to = Some("25.1.3".into());
    c.install_s = 200.0; // 0.2 s real at time scale 0.001
    c.base_install_s = 100.0;
    c
}

#[tokio::test]
async fn install_fails_keeps_old_version_and_reports_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast(config("a", dir.path()));
    cfg.faults.install_fails = true;
    let sim = start(cfg).await;
    let http = client(&sim);
    let (s, _) = sim_post(&http, &sim.url(), "/_sim/install", json!({})).await;
    assert_eq!(s, 202);
    let (version, _, success, _) =
        eventually(Duration::from_secs(10), "appliance back", || async {
            health(&http, &sim.url()).await
        })
        .await;
    assert!(
        version.starts_with("24.3.1 "),
        "still on the old version: {version}"
    );
    assert_eq!(success, "0");
    let tok = token(&http, &sim.url()).await;
    let body = health_xml(&http, &sim.url(), &tok).await.unwrap();
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert!(
        xml_field(&doc, "error_message")
            .unwrap()
            .contains("Update failed")
    );
    let plain = plain_health(&http, &sim).await;
    assert_eq!(plain.status(), 500);
}

#[tokio::test]
async fn install_hangs_keeps_appliance_unreachable_until_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast(config("a", dir.path()));
    cfg.faults.install_hangs = true;
    let sim = start(cfg).await;
    let http = client(&sim);
    let (s, v) = sim_post(&http, &sim.url(), "/_sim/install", json!({})).await;
    assert_eq!(s, 202);
    let real_ms = v["real_ms"].as_u64().unwrap();
    // Observe for five times the install duration: it never answers.
    let until = Instant::now() + Duration::from_millis(real_ms * 5);
    while Instant::now() < until {
        let r = http.get(format!("{}/check_health", sim.url())).send().await;
        assert!(
            r.is_err_and(|e| e.is_connect()),
            "a hanging install keeps the appliance down"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    sim.set_fault(Fault::InstallHangs(false));
    let (version, ..) = eventually(Duration::from_secs(10), "appliance back", || async {
        health(&http, &sim.url()).await
    })
    .await;
    assert!(version.starts_with("25.1.3 "));
}

#[tokio::test]
async fn http_5xx_rate_answers_500_on_vendor_apis_only() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let http = client(&sim);
    let (s, v) = sim_post(
        &http,
        &sim.url(),
        "/_sim/faults",
        json!({ "set": ["http-5xx=1"] }),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["http_5xx_rate"], 1.0);
    let r = plain_health(&http, &sim).await;
    assert_eq!(r.status(), 500);
    let r = http
        .get(format!("{}/_sim/state", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "automation is not affected");
    sim_post(
        &http,
        &sim.url(),
        "/_sim/faults",
        json!({ "clear_all": true }),
    )
    .await;
    let r = plain_health(&http, &sim).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn latency_delays_responses() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let http = client(&sim);
    sim.set_fault(Fault::LatencyMs(300));
    let t = Instant::now();
    let r = plain_health(&http, &sim).await;
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn reset_closes_connections_without_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let http = client(&sim);
    sim.set_fault(Fault::ResetRate(1.0));
    let r = http.get(format!("{}/check_health", sim.url())).send().await;
    let e = r.expect_err("no HTTP answer");
    assert!(!e.is_timeout() && e.status().is_none(), "{e:?}");
    sim.set_fault(Fault::ResetRate(0.0));
    assert_eq!(plain_health(&http, &sim).await.status(), 200);
}

#[tokio::test]
async fn token_endpoint_down_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("a", dir.path());
    cfg.faults = swing_sim::Faults::parse_all(["token-down"]).unwrap();
    let sim = start(cfg).await;
    let http = client(&sim);
    let r = http
        .post(format!("{}/oauth2/token", sim.url()))
        .basic_auth(ID, Some(SECRET))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(sim.state().tokens_issued, 0);
}

#[tokio::test]
async fn token_expiry_makes_tokens_short_lived() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let http = client(&sim);
    sim.set_fault(Fault::TokenLifetime(Some(1)));
    let r = http
        .post(format!("{}/oauth2/token", sim.url()))
        .basic_auth(ID, Some(SECRET))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["expires_in"], 1);
    let tok = v["access_token"].as_str().unwrap().to_string();
    assert!(health_xml(&http, &sim.url(), &tok).await.is_ok());
    eventually(Duration::from_secs(5), "token expires", || async {
        let r = http
            .get(format!("{}/api/command?action=check_health", sim.url()))
            .bearer_auth(&tok)
            .send()
            .await
            .ok()?;
        (r.status() == 401).then_some(())
    })
    .await;
}

#[tokio::test]
async fn clock_skew_shifts_the_date_header() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let http = client(&sim);
    sim.set_fault(Fault::ClockSkew(3600));
    let r = plain_health(&http, &sim).await;
    let date = httpdate::parse_http_date(r.headers()["date"].to_str().unwrap()).unwrap();
    let ahead = date.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(
        ahead > Duration::from_secs(3590) && ahead < Duration::from_secs(3610),
        "{ahead:?}"
    );
}

#[tokio::test]
async fn expiring_certificate_is_served_and_expired_one_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    sim.set_fault(Fault::CertExpiring(Some(10)));
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .tls_info(true)
        .build()
        .unwrap();
    let r = plain_health(&http, &sim).await;
    let info = r.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
    let der = info.peer_certificate().unwrap().to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let left = cert.validity().not_after.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        left > 9 * 86400 && left <= 10 * 86400 + 60,
        "expires in {left} s"
    );

    sim.set_fault(Fault::CertExpiring(Some(-1)));
    let e = client(&sim)
        .get(format!("{}/check_health", sim.url()))
        .send()
        .await
        .unwrap_err();
    let chain = format!("{e:?}");
    assert!(chain.to_lowercase().contains("expired"), "{chain}");
}

#[tokio::test]
async fn key_mismatch_refuses_establish_and_confirm_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = config("a", dir.path());
    ca.key = Some("same-key".into());
    let a = start(ca).await;
    let mut cb = config("b", dir.path());
    cb.key = Some("same-key".into());
    cb.faults.key_mismatch = true;
    let b = start(cb).await;
    let http = client(&a);
    let (s, v) = sim_post(
        &http,
        &a.url(),
        "/_sim/confirm-keys",
        json!({ "peer": b.addr().to_string() }),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["identical"], false);
    let (s, v) = sim_post(
        &http,
        &a.url(),
        "/_sim/establish",
        json!({ "backup_address": b.addr().to_string() }),
    )
    .await;
    assert_eq!(s, 409);
    assert!(v["error"].as_str().unwrap().contains("key mismatch"), "{v}");
    assert_eq!(health(&http, &a.url()).await.unwrap().1, "none");
    b.set_fault(Fault::KeyMismatch(false));
    let (s, v) = sim_post(
        &http,
        &a.url(),
        "/_sim/confirm-keys",
        json!({ "peer": b.addr().to_string() }),
    )
    .await;
    assert_eq!((s, v["identical"].as_bool()), (200, Some(true)));
}

#[tokio::test]
async fn slow_sync_takes_longer() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = config("a", dir.path());
    ca.key = Some("k".into());
    let a = start(ca).await;
    let mut cb = config("b", dir.path());
    cb.key = Some("k".into());
    let b = start(cb).await;
    let http = client(&a);
    let (s, _) = sim_post(
        &http,
        &a.url(),
        "/_sim/establish",
        json!({ "backup_address": b.addr().to_string() }),
    )
    .await;
    assert_eq!(s, 200);
    let t = Instant::now();
    let (s, v) = sim_post(&http, &a.url(), "/_sim/sync-now", json!({ "wait": true })).await;
    assert_eq!(s, 200, "{v}");
    let normal = t.elapsed();
    assert_eq!(v["sim_duration_s"], 10.0);
    a.set_fault(Fault::SlowSync(Some(40.0)));
    let t = Instant::now();
    let (s, v) = sim_post(&http, &a.url(), "/_sim/sync-now", json!({ "wait": true })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sim_duration_s"], 400.0);
    assert!(
        t.elapsed() >= Duration::from_millis(400) && t.elapsed() > normal,
        "{:?}",
        t.elapsed()
    );
}

async fn needs_update_after_install(never_return: bool) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast(config("a", dir.path()));
    cfg.jump_clients = 40;
    cfg.jump_client_throttle = 10;
    cfg.jump_client_upgrade_s = 600.0;
    cfg.faults.clients_never_return = never_return;
    let sim = start(cfg).await;
    let http = client(&sim);
    let (s, _) = sim_post(&http, &sim.url(), "/_sim/install", json!({})).await;
    assert_eq!(s, 202);
    eventually(Duration::from_secs(10), "appliance back", || async {
        health(&http, &sim.url()).await
    })
    .await;
    let count = |tok: String| {
        let http = http.clone();
        let url = sim.url();
        async move {
            let items: Vec<serde_json::Value> = http
                .get(format!("{url}/api/config/v1/jump-client?per_page=100"))
                .bearer_auth(&tok)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            Some(items.iter().filter(|i| i["needs_update"] == true).count() as u64)
        }
    };
    let tok = token(&http, &sim.url()).await;
    let first = count(tok.clone()).await.unwrap();
    // 40 clients, 10 at a time, 600 simulated s each: the first return after 0.6 s real,
    // all within 2.4 s. Without the fault, wait (bounded) until all are back; with it, watch
    // for twice the time they would have needed.
    let window = if never_return {
        Duration::from_millis(4800)
    } else {
        Duration::from_secs(15)
    };
    let deadline = Instant::now() + window;
    let mut last = first;
    while Instant::now() < deadline && last > 0 {
        last = count(tok.clone()).await.unwrap();
        // Under the vendor's rate limit of 20 requests a second.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    (first, last)
}

#[tokio::test]
async fn jump_clients_return_at_throttle_rate_and_never_with_fault() {
    let (first, last) = needs_update_after_install(false).await;
    assert!(first > 0, "clients need an update right after the install");
    assert_eq!(last, 0, "all clients return");
    let (first, last) = needs_update_after_install(true).await;
    assert_eq!(
        (first, last),
        (40, 40),
        "clients never return under the fault"
    );
}

#[tokio::test]
async fn extreme_knob_values_do_not_break_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    sim.set_fault(Fault::ClockSkew(i64::MAX));
    sim.set_fault(Fault::TokenLifetime(Some(u64::MAX)));
    sim.set_fault(Fault::CertExpiring(Some(i64::MIN)));
    sim.set_fault(Fault::CertExpiring(Some(i64::MAX)));
    let http = client(&sim);
    let tok = token(&http, &sim.url()).await;
    assert!(health_xml(&http, &sim.url(), &tok).await.is_ok());
    let r = http
        .get(format!(
            "{}/api/config/v1/jump-client?per_page=100&current_page=18446744073709551615",
            sim.url()
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Vec<serde_json::Value>>().await.unwrap().len(), 0);
    assert_eq!(sim.state().name, "a");
}
