//! Shared helpers of the simulator's integration tests: a verifying HTTPS client for the
//! simulator's CA, token fetching, `/_sim` calls and polling with deadlines.
//!
//! Must not: disable TLS verification; sleep in place of waiting for a condition.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use swing_sim::{SimConfig, SimHandle, Simulator};

pub const ID: &str = "swing-test";
pub const SECRET: &str = "test-secret-not-real";

pub fn config(name: &str, dir: &Path) -> SimConfig {
    let mut c = SimConfig::new(name, dir);
    c.client_id = ID.into();
    c.client_secret = SECRET.into();
    c.time_scale = 0.001;
    c
}

pub async fn start(cfg: SimConfig) -> SimHandle {
    Simulator::start(cfg).await.expect("simulator starts")
}

/// A client that trusts only the simulator CA and closes the connection after each call.
pub fn client(sim: &SimHandle) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA parses");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub async fn token(http: &reqwest::Client, base: &str) -> String {
    let r = http
        .post(format!("{base}/oauth2/token"))
        .basic_auth(ID, Some(SECRET))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status(), 200, "token endpoint answers 200");
    let v: Value = r.json().await.expect("token JSON");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

pub async fn health_xml(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<String, reqwest::Error> {
    http.get(format!("{base}/api/command?action=check_health"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// POST JSON to a `/_sim` endpoint; returns (status, body).
/// `GET /check_health` (no API data): the appliance's plain health answer.
pub async fn plain_health(http: &reqwest::Client, sim: &SimHandle) -> reqwest::Response {
    http.get(format!("{}/check_health", sim.url()))
        .send()
        .await
        .unwrap()
}

pub async fn sim_post(http: &reqwest::Client, base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("/_sim call");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Child element text of the check_health document, by local name.
pub fn xml_field(doc: &roxmltree::Document<'_>, name: &str) -> Option<String> {
    doc.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .map(|n| n.text().unwrap_or("").to_string())
}

/// Poll `f` until it returns `Some`, or panic after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A random loopback /24 prefix `127.X.Y` so parallel tests never share addresses.
pub fn loopback_prefix() -> String {
    format!("127.{}.{}", fastrand::u8(20..250), fastrand::u8(1..250))
}

/// A client that reaches `site` at `addr` (SNI and verification by hostname, like a real
/// client resolving the site name to the shared address).
pub fn site_client(sim: &SimHandle, site: &str, addr: std::net::SocketAddr) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA parses");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .pool_max_idle_per_host(0)
        .resolve(site, addr)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// The appliance id `check_health` reports at `base`, or `None` when nothing answers.
pub async fn health_id(http: &reqwest::Client, base: &str) -> Option<String> {
    let r = http
        .post(format!("{base}/oauth2/token"))
        .basic_auth(ID, Some(SECRET))
        .body("grant_type=client_credentials")
        .send()
        .await
        .ok()?;
    let v: Value = r.json().await.ok()?;
    let tok = v["access_token"].as_str()?.to_string();
    let body = health_xml(http, base, &tok).await.ok()?;
    let doc = roxmltree::Document::parse(&body).ok()?;
    doc.descendants()
        .find(|n| n.tag_name().name() == "appliance")
        .and_then(|n| n.attribute("id"))
        .map(str::to_string)
}

/// The parsed check_health fields of interest: (version, role, success, last sync UNIX).
pub async fn health(
    http: &reqwest::Client,
    base: &str,
) -> Option<(String, String, String, Option<i64>)> {
    let tok = {
        let r = http
            .post(format!("{base}/oauth2/token"))
            .basic_auth(ID, Some(SECRET))
            .body("grant_type=client_credentials")
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["access_token"].as_str()?.to_string()
    };
    let body = health_xml(http, base, &tok).await.ok()?;
    let doc = roxmltree::Document::parse(&body).ok()?;
    // The `ts` attribute (newer dialect) or, as recorded, only the text with `+0000`.
    let ts = doc
        .descendants()
        .find(|n| n.tag_name().name() == "last_data_sync_time")
        .and_then(|n| {
            n.attribute("ts").and_then(|t| t.parse().ok()).or_else(|| {
                chrono::DateTime::parse_from_str(n.text()?.trim(), "%Y-%m-%dT%H:%M:%S%z")
                    .ok()
                    .map(|t| t.timestamp())
            })
        });
    Some((
        xml_field(&doc, "version")?,
        xml_field(&doc, "failover_role")?,
        xml_field(&doc, "success")?,
        ts,
    ))
}
