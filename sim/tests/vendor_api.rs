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
