//! The vendor wire formats as a client sees them: OAuth, check_health XML, plain health,
//! backup, Jump Client paging, Date header, token limits.

mod common;

use common::*;
use std::time::Duration;
use swing_sim::{Dialect, JumpClientGroup};

#[tokio::test]
async fn check_health_with_token_returns_the_recorded_xml_in_both_dialects() {
    for (dialect, root_name, ns) in [
        (
            Dialect::Bomgar,
            "health_check",
            "http://www.bomgar.com/namespaces/API/command",
        ),
        (
            Dialect::Beyondtrust,
            "check_health",
            "https://www.beyondtrust.com/namespaces/API/command",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config("a", dir.path());
        cfg.dialect = dialect;
        let sim = start(cfg).await;
        let http = client(&sim);
        let tok = token(&http, &sim.url()).await;
        let body = health_xml(&http, &sim.url(), &tok).await.unwrap();
        let doc = roxmltree::Document::parse(&body).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), root_name, "{dialect}");
        assert_eq!(root.tag_name().namespace(), Some(ns), "{dialect}");
        // Indented with tabs as recorded.
        assert!(body.contains("\n\t<success>"), "{body}");
        let app = doc
            .descendants()
            .find(|n| n.tag_name().name() == "appliance")
            .unwrap();
        let id = app.attribute("id").unwrap();
        assert_eq!(id, sim.appliance_id());
        assert!(
            id.len() == 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}"
        );
        // The appliance's own host name, not the site.
        assert_eq!(app.text(), Some("ip-127-0-0-1"));
        assert_eq!(sim.state().hostname, "ip-127-0-0-1");
        let version = xml_field(&doc, "version").unwrap();
        let (number, build) = version.split_once(' ').unwrap();
        assert_eq!(number, "24.3.1");
        let (num, commit) = build
            .strip_prefix('(')
            .and_then(|b| b.strip_suffix(')'))
            .and_then(|b| b.split_once('-'))
            .unwrap_or_else(|| panic!("{version}"));
        assert_eq!(num, "4711");
        assert!(
            commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{version}"
        );
        assert_eq!(xml_field(&doc, "success").as_deref(), Some("1"));
        assert_eq!(xml_field(&doc, "failover_role").as_deref(), Some("none"));
        assert!(xml_field(&doc, "error_message").is_none());
        assert!(xml_field(&doc, "last_data_sync_time").is_none());
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn the_appliance_id_is_stable_per_name_and_the_host_name_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let a1 = start(config("a", dir.path())).await;
    let id = a1.appliance_id().to_string();
    a1.shutdown().await;
    let mut cfg = config("a", dir.path());
    cfg.hostname = Some("pra-a".into());
    let a2 = start(cfg).await;
    assert_eq!(a2.appliance_id(), id);
    let b = start(config("b", dir.path())).await;
    assert_ne!(b.appliance_id(), id);
    let http = client(&a2);
    let tok = token(&http, &a2.url()).await;
    let body = health_xml(&http, &a2.url(), &tok).await.unwrap();
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert_eq!(xml_field(&doc, "appliance").as_deref(), Some("pra-a"));
}

#[tokio::test]
async fn tokens_expire_after_an_hour_and_the_31st_evicts_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("a", dir.path());
    // 34 requests in a burst are about the token limit here; the rate limit has its own test.
    cfg.rate_limit = None;
    let sim = start(cfg).await;
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
    assert!(link.contains("current_page=2>; rel=\"previous\""), "{link}");
    assert!(link.contains("current_page=1>; rel=\"first\""), "{link}");
    assert!(link.contains("current_page=3>; rel=\"last\""), "{link}");
    assert_eq!(r.headers()["x-bt-pagination-current-page"], "3");
    assert_eq!(r.headers()["x-bt-pagination-per-page"], "100");
    assert!(!link.contains("rel=\"next\""), "{link}");
    let items: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(items.len(), 50);
    assert_eq!(items[0]["id"], 201);
    assert_eq!(items[0]["needs_update"], false);
    assert!(items[0]["last_connect_timestamp"].is_string());
    assert!(items[0]["connection_type"].is_string());
    let ts = items[0]["last_connect_timestamp"].as_str().unwrap();
    assert!(ts.ends_with("+00:00"), "{ts}");
    for per in [101, 4] {
        let r = page(1, per).await.unwrap();
        assert_eq!(r.status(), 400, "per_page is 5..=100");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains("per_page"), "{v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let r = page(2, 100).await.unwrap();
    let link = r.headers()["link"].to_str().unwrap().to_string();
    for rel in ["first", "previous", "next", "last"] {
        assert!(link.contains(&format!("rel=\"{rel}\"")), "{rel}: {link}");
    }
    // An unknown query parameter is a 401 with an error JSON, as documented.
    let r = http
        .get(format!(
            "{}/api/config/v1/jump-client?per_page=10&bogus=1",
            sim.url()
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("bogus"), "{v}");
}

#[tokio::test]
async fn jump_clients_of_every_kind_carry_the_openapi_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("a", dir.path());
    cfg.jump_clients = 4;
    cfg.jump_client_groups = [
        "active-offline=1",
        "passive=2",
        "uninstalled=1:needs-update",
        "lost=2",
    ]
    .iter()
    .map(|g| g.parse::<JumpClientGroup>().unwrap())
    .collect();
    let sim = start(cfg).await;
    let http = client(&sim);
    let tok = token(&http, &sim.url()).await;
    let r = http
        .get(format!(
            "{}/api/config/v1/jump-client?per_page=100",
            sim.url()
        ))
        .bearer_auth(&tok)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-bt-pagination-total"], "10");
    let items: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(items.len(), 10);
    let unix = |v: &serde_json::Value| {
        v.as_str().map(|s| {
            assert!(s.ends_with("+00:00"), "{s}");
            chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
        })
    };
    for i in &items {
        for field in [
            "id",
            "name",
            "connection_type",
            "needs_update",
            "last_connect_timestamp",
            "last_disconnect_timestamp",
            "is_lost",
            "unavailable_reason",
            "fqdn",
            "operating_system",
            "public_ip",
            "private_ip",
        ] {
            assert!(i.get(field).is_some(), "{field} missing in {i}");
        }
    }
    let online = |i: &serde_json::Value| {
        let c = unix(&i["last_connect_timestamp"]).unwrap();
        unix(&i["last_disconnect_timestamp"]).is_none_or(|d| c > d)
    };
    // The active ones are online: connected after their last disconnect (or never cut off).
    for i in &items[..4] {
        assert_eq!(i["connection_type"], "active");
        assert_eq!(i["needs_update"], false);
        assert_eq!(i["is_lost"], false);
        assert!(online(i), "{i}");
    }
    assert!(
        items[..4]
            .iter()
            .any(|i| i["last_disconnect_timestamp"].is_null())
    );
    assert!(
        items[..4]
            .iter()
            .any(|i| i["last_disconnect_timestamp"].is_string())
    );
    assert_eq!(items[4]["connection_type"], "active");
    assert!(!online(&items[4]), "{}", items[4]);
    assert_eq!(items[5]["connection_type"], "passive");
    assert_eq!(items[6]["connection_type"], "passive");
    assert_eq!(items[7]["connection_type"], "uninstalled");
    assert_eq!(items[7]["needs_update"], true);
    for i in &items[8..] {
        assert_eq!(i["connection_type"], "active");
        assert_eq!(i["is_lost"], true);
        assert!(!online(i), "{i}");
    }
    let jc = sim.state().jump_clients;
    assert_eq!(
        (
            jc.total,
            jc.upgraded_online,
            jc.active_offline,
            jc.passive,
            jc.uninstalled,
            jc.lost
        ),
        (4, 4, 1, 2, 1, 2)
    );
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config("a", dir.path())).await;
    let http = client(&sim);
    let tok = token(&http, &sim.url()).await;
    // 40 requests at once: more than the 20 a second allows arrive within one second
    // unless the machine is very slow, which the bound below allows for.
    let started = std::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (http, url, tok) = (http.clone(), sim.url(), tok.clone());
        set.spawn(async move {
            http.get(format!("{url}/api/command?action=check_health"))
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
        });
    }
    let mut passed = 0u64;
    let mut limited = None;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.headers()["x-ratelimit-limit"], "20");
        assert!(r.headers().contains_key("x-ratelimit-remaining"));
        if r.status() == 200 {
            passed += 1;
        } else {
            assert_eq!(r.status(), 429);
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(retry, 1, "a second-window refusal waits a second");
            assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
            limited = Some(r.json::<serde_json::Value>().await.unwrap());
        }
    }
    let seconds = started.elapsed().as_secs() + 1;
    // The token request counted too.
    assert!(passed < 20 * seconds, "{passed} passed in {seconds} s");
    if seconds == 1 {
        let v = limited.expect("a 429 among 40 requests in one second");
        assert_eq!(v["error"], "rate_limited");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("20 requests per second"),
            "{v}"
        );
    }
    assert_eq!(sim.state().rate_limited, 40 - passed);
    // The plain health page is not an API call and never limited.
    assert_eq!(plain_health(&http, &sim).await.status(), 200);
}

#[tokio::test]
async fn permissions_are_listed_and_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("a", dir.path());
    cfg.permissions
        .apply_spec("perm_command=read_only,perm_backup=0")
        .unwrap();
    let sim = start(cfg).await;
    let http = client(&sim);
    let tok = token(&http, &sim.url()).await;
    let body = http
        .get(format!("{}/api/command?action=get_api_info", sim.url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "api_information");
    let perm = |name: &str| {
        doc.descendants()
            .find(|n| n.tag_name().name() == "permission" && n.attribute("name") == Some(name))
            .and_then(|n| n.text())
            .map(str::to_string)
    };
    assert_eq!(perm("perm_command").as_deref(), Some("read_only"));
    assert_eq!(perm("perm_backup").as_deref(), Some("0"));
    assert_eq!(perm("perm_scim").as_deref(), Some("1"));
    // check_health works read-only.
    assert!(health_xml(&http, &sim.url(), &tok).await.is_ok());
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
    assert!(body.contains("perm_command"), "{body}");
    let r = http
        .post(format!("{}/api/backup", sim.url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("xml")
    );
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<error") && body.contains("perm_backup"),
        "{body}"
    );
    assert_eq!(sim.state().backups_served, 0);
}
