//! The simulator's default answers against the recorded shapes: the element names and
//! namespaces of `check_health` and `get_api_info`, and the Configuration API's header set
//! and `Link` relations, compared with the lists of `appliance-api.md`, section "What public
//! recordings and the vendor's OpenAPI show (checked December 2026)". The lists below are
//! copied from that section; a change of the simulator that departs from them fails here.
//!
//! Must not: accept a tidied shape the recordings do not show; talk to anything but loopback.

mod common;

use std::collections::BTreeSet;

use common::*;
use swing_sim::{Dialect, Role};

/// Command API, recorded: root `<health_check>` in the older namespace (default dialect).
const RECORDED_HEALTH_ROOT: &str = "health_check";
const RECORDED_NAMESPACE: &str = "http://www.bomgar.com/namespaces/API/command";
/// Newer releases' namespace (the other dialect).
const NEWER_NAMESPACE: &str = "https://www.beyondtrust.com/namespaces/API/command";
/// `check_health` children of a failover member with a shared IP (section "Command API").
const HEALTH_ELEMENTS: &[&str] = &[
    "appliance",
    "version",
    "success",
    "failover_role",
    "enabled_shared_ips",
    "ip",
    "last_data_sync_time",
    "last_data_sync_status",
];
/// `get_api_info`: `<api_information>` with these children.
const API_INFO_ROOT: &str = "api_information";
const API_INFO_ELEMENTS: &[&str] = &[
    "api_version",
    "company_name",
    "timestamp",
    "permissions",
    "permission",
];
/// The permissions the recorded answer lists (`perm_reporting_*` stands for several).
const PERMISSIONS: &[&str] = &[
    "perm_command",
    "perm_backup",
    "perm_real_time_state",
    "perm_ecm",
    "perm_scim",
];
/// Configuration API paging headers (OpenAPI 1.10) and the rate-limit headers.
const PAGING_HEADERS: &[&str] = &[
    "x-bt-pagination-current-page",
    "x-bt-pagination-per-page",
    "x-bt-pagination-last-page",
    "x-bt-pagination-total",
    "link",
];
const RATE_HEADERS: &[&str] = &["x-ratelimit-limit", "x-ratelimit-remaining"];
/// `Link` relations: `previous`, not `prev`.
const LINK_RELS: &[&str] = &["first", "previous", "next", "last"];

fn element_names(doc: &roxmltree::Document<'_>) -> BTreeSet<String> {
    doc.root_element()
        .descendants()
        .skip(1)
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name().to_string())
        .collect()
}

fn namespaces(doc: &roxmltree::Document<'_>) -> BTreeSet<Option<String>> {
    doc.descendants()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().namespace().map(str::to_string))
        .collect()
}

async fn command(http: &reqwest::Client, base: &str, tok: &str, action: &str) -> String {
    let r = http
        .get(format!("{base}/api/command?action={action}"))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "text/xml; charset=UTF-8",
        "recorded content type"
    );
    r.text().await.unwrap()
}

/// A failover member with a shared IP, so every documented element appears.
async fn member(dialect: Option<Dialect>) -> (tempfile::TempDir, swing_sim::SimHandle) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = loopback_prefix();
    let mut cfg = config("a", dir.path());
    cfg.listen = format!("{prefix}.11:0").parse().unwrap();
    cfg.role = Role::Primary;
    cfg.peer = Some(format!("{prefix}.12:9").parse().unwrap());
    cfg.key = Some("k".into());
    cfg.shared_ip = Some(format!("{prefix}.10").parse().unwrap());
    cfg.jump_clients = 12;
    if let Some(d) = dialect {
        cfg.dialect = d;
    }
    let sim = start(cfg).await;
    (dir, sim)
}

#[tokio::test]
async fn default_command_answers_have_the_recorded_elements_and_namespace() {
    let (_dir, sim) = member(None).await;
    let http = client(&sim);
    let tok = token(&http, &sim.url()).await;

    let body = command(&http, &sim.url(), &tok, "check_health").await;
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), RECORDED_HEALTH_ROOT);
    let want: BTreeSet<String> = HEALTH_ELEMENTS.iter().map(|s| s.to_string()).collect();
    assert_eq!(element_names(&doc), want, "{body}");
    assert_eq!(
        namespaces(&doc),
        BTreeSet::from([Some(RECORDED_NAMESPACE.to_string())]),
        "{body}"
    );
    // As recorded: no `ts`, offset `+0000`.
    let sync = doc
        .descendants()
        .find(|n| n.tag_name().name() == "last_data_sync_time")
        .unwrap();
    assert_eq!(sync.attribute("ts"), None);
    assert!(sync.text().unwrap().ends_with("+0000"), "{body}");

    let body = command(&http, &sim.url(), &tok, "get_api_info").await;
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), API_INFO_ROOT);
    let want: BTreeSet<String> = API_INFO_ELEMENTS.iter().map(|s| s.to_string()).collect();
    assert_eq!(element_names(&doc), want, "{body}");
    assert_eq!(
        namespaces(&doc),
        BTreeSet::from([Some(RECORDED_NAMESPACE.to_string())])
    );
    let listed: BTreeSet<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "permission")
        .filter_map(|n| n.attribute("name"))
        .collect();
    for p in PERMISSIONS {
        assert!(listed.contains(p), "{p} not listed: {listed:?}");
    }
    assert!(listed.iter().any(|p| p.starts_with("perm_reporting_")));
    assert_eq!(xml_field(&doc, "api_version").as_deref(), Some("1.19.0"));
}

#[tokio::test]
async fn the_newer_dialect_differs_only_in_namespace_root_and_sync_time() {
    let (_dir, sim) = member(Some(Dialect::Beyondtrust)).await;
    let http = client(&sim);
    let tok = token(&http, &sim.url()).await;
    let body = command(&http, &sim.url(), &tok, "check_health").await;
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "check_health");
    let want: BTreeSet<String> = HEALTH_ELEMENTS.iter().map(|s| s.to_string()).collect();
    assert_eq!(element_names(&doc), want, "{body}");
    assert_eq!(
        namespaces(&doc),
        BTreeSet::from([Some(NEWER_NAMESPACE.to_string())])
    );
    let sync = doc
        .descendants()
        .find(|n| n.tag_name().name() == "last_data_sync_time")
        .unwrap();
    assert!(sync.attribute("ts").is_some(), "{body}");
    assert!(sync.text().unwrap().ends_with("+00:00"), "{body}");
}

#[tokio::test]
async fn configuration_api_headers_and_link_relations_are_the_openapi_ones() {
    let (_dir, sim) = member(None).await;
    let http = client(&sim);
    let tok = token(&http, &sim.url()).await;
    // 12 clients, 5 a page: page 2 of 3 has every relation.
    let r = http
        .get(format!(
            "{}/api/config/v1/jump-client?per_page=5&current_page=2",
            sim.url()
        ))
        .bearer_auth(&tok)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let names: BTreeSet<String> = r.headers().keys().map(|k| k.as_str().to_string()).collect();
    for h in PAGING_HEADERS.iter().chain(RATE_HEADERS) {
        assert!(names.contains(*h), "{h} missing: {names:?}");
    }
    let bt: BTreeSet<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("x-bt-"))
        .collect();
    let want: BTreeSet<&str> = PAGING_HEADERS
        .iter()
        .copied()
        .filter(|n| n.starts_with("x-bt-"))
        .collect();
    assert_eq!(bt, want, "exactly the four X-BT-Pagination headers");
    let link = r.headers()["link"].to_str().unwrap().to_string();
    let rels: BTreeSet<&str> = link
        .split(',')
        .filter_map(|part| part.split("rel=\"").nth(1))
        .filter_map(|r| r.split('"').next())
        .collect();
    assert_eq!(rels, LINK_RELS.iter().copied().collect(), "{link}");
    let items: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(items.len(), 5);
    for i in &items {
        let t = i["last_connect_timestamp"].as_str().unwrap();
        assert!(t.ends_with("+00:00"), "date-times end in +00:00: {t}");
    }
}
