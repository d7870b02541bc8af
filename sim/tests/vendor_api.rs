//! The vendor wire formats as a client sees them: OAuth, check_health XML, plain health,
//! backup, Jump Client paging, Date header, token limits.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test]
async fn check_health_with_token_returns_documented_xml() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let http = client(&sim);
    let tok = token(&http, &sim.url()).await;
    let body = health_xml(&http, &sim.url(), &tok).await.unwrap();
    let doc = roxmltree::Document::parse(&body).unwrap();
    let root = doc.root_element();
    assert_eq!(
        root.tag_name().namespace(),
        Some("https://www.beyondtrust.com/namespaces/API/command")
    );
    let app = doc
        .descendants()
        .find(|n| n.tag_name().name() == "appliance")
        .unwrap();
    assert_eq!(app.attribute("id"), Some(sim.appliance_id()));
    assert_eq!(app.text(), Some("access.example.test"));
    assert!(xml_field(&doc, "version").unwrap().starts_with("24.3.1 "));
    assert_eq!(xml_field(&doc, "success").as_deref(), Some("1"));
    assert_eq!(xml_field(&doc, "failover_role").as_deref(), Some("none"));
    assert!(xml_field(&doc, "error_message").is_none());
    assert!(xml_field(&doc, "last_data_sync_time").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_after_an_hour_and_the_31st_evicts_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let http = client(&sim);
    let r = http
        .post(format!("{}/oauth2/token", sim.url()))
        .basic_auth(ID, Some(SECRET))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    let first = v["access_token"].as_str().unwrap().to_string();
    let mut last = String::new();
    for _ in 0..30 {
        last = token(&http, &sim.url()).await;
    }
    let st = sim.state();
    assert_eq!(st.tokens_issued, 31);
    assert_eq!(st.tokens_live, 30);
    let old = http
        .get(format!("{}/api/command?action=check_health", sim.url()))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401, "the oldest token was evicted");
    assert!(health_xml(&http, &sim.url(), &last).await.is_ok());
    // Wrong secret and missing token are refused.
    let bad = http
        .post(format!("{}/oauth2/token", sim.url()))
        .basic_auth(ID, Some("wrong"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let none = http
        .get(format!("{}/api/command?action=check_health", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
}

#[tokio::test]
async fn command_api_errors_and_api_info_are_xml() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let http = client(&sim);
    let tok = token(&http, &sim.url()).await;
    let get = |q: &'static str| {
        http.get(format!("{}/api/command?{q}", sim.url()))
            .bearer_auth(&tok)
            .send()
    };
    let body = get("action=nonsense").await.unwrap().text().await.unwrap();
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "error");
    let body = get("action=get_api_info")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert!(xml_field(&doc, "api_version").is_some());
    // Not in a relationship: set_failover_role is refused with <error>.
    let body = http
        .post(format!("{}/api/command", sim.url()))
        .bearer_auth(&tok)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("action=set_failover_role&role=primary")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "error");
}

#[tokio::test]
async fn plain_health_backup_checksum_and_date_header() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let http = client(&sim);
    let r = plain_health(&http, &sim).await;
    assert_eq!(r.status(), 200);
    let date = r
        .headers()
        .get("date")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let served = httpdate::parse_http_date(&date).unwrap();
    let diff = served
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_else(|e| e.duration());
    assert!(
        diff < Duration::from_secs(5),
        "Date header follows the clock"
    );

    let tok = token(&http, &sim.url()).await;
    let r = http
        .post(format!("{}/api/backup", sim.url()))
        .bearer_auth(&tok)
        .json(&serde_json::json!({ "password": "backup-pass" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let blob = r.bytes().await.unwrap();
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(&blob)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sim.state().backup_sha256.as_deref(), Some(digest.as_str()));
    assert!(
        !String::from_utf8_lossy(&blob).contains("backup-pass"),
        "password not in the file"
    );
    assert!(
        !String::from_utf8_lossy(&blob).contains(SECRET),
        "API secret not in the file"
    );
}

#[tokio::test]
async fn jump_client_paging_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("a", dir.path());
    cfg.jump_clients = 250;
    let sim = start(cfg).await;
    let http = client(&sim);
    let tok = token(&http, &sim.url()).await;
    let page = |p: u32, per: u32| {
        http.get(format!(
            "{}/api/config/v1/jump-client?per_page={per}&current_page={p}",
            sim.url()
        ))
        .bearer_auth(&tok)
        .header("Accept", "application/json")
        .send()
    };
    let r = page(3, 100).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-bt-pagination-total"], "250");
    assert_eq!(r.headers()["x-bt-pagination-last-page"], "3");
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert!(link.contains("current_page=2>; rel=\"prev\""), "{link}");
    assert!(!link.contains("rel=\"next\""), "{link}");
    let items: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(items.len(), 50);
    assert_eq!(items[0]["id"], 201);
    assert_eq!(items[0]["needs_update"], false);
    assert!(items[0]["last_connect_timestamp"].is_string());
    assert!(items[0]["connection_type"].is_string());
    assert_eq!(
        page(1, 101).await.unwrap().status(),
        400,
        "per_page is at most 100"
    );
}
