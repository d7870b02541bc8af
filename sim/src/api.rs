//! The vendor APIs, as a real appliance serves them (`appliance-api.md`), and the router.
//!
//! Owns: `POST /oauth2/token`, `/api/command` (`check_health`, `set_failover_role`,
//! `get_api_info`; XML in the vendor namespace, errors as `<error>`), `GET /check_health`,
//! `/api/backup`, `GET /api/config/v1/jump-client` (paging headers), the fault middleware
//! (latency, 5xx, resets; never applied to `/_sim`) and the HTTP `Date` header from the
//! simulated clock.
//!
//! Must not: offer anything the vendor does not (that lives in `automation`); accept a
//! request without the credentials the vendor would require.

// Handlers return an early `Response` as the error of small helpers; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::ca::hex;
use crate::config::Role;
use crate::server::ConnCtl;
use crate::sim::{MAX_TOKEN_LIFETIME_S, MAX_TOKENS, Sim, TOKEN_LIFETIME_S, sha256};
use crate::state::{ApplianceStatus, Token};

pub(crate) const NS: &str = "https://www.beyondtrust.com/namespaces/API/command";
/// Command API version reported by `get_api_info`.
const API_VERSION: &str = "1.32.0";

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/api/command", get(command).post(command))
        .route("/check_health", get(plain_health))
        .route("/api/backup", get(backup).post(backup))
        .route("/api/config/v1/jump-client", get(jump_clients))
        .merge(crate::automation::routes())
        .layer(middleware::from_fn_with_state(sim.clone(), faults_and_date))
        .with_state(sim)
}

async fn faults_and_date(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/_sim") {
        let f = sim.faults();
        if f.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
        }
        if f.reset_rate > 0.0
            && fastrand::f64() < f.reset_rate
            && let Some(ctl) = req.extensions().get::<ConnCtl>()
        {
            ctl.reset.cancel();
            // The connection task resets the socket; this response is never sent.
            std::future::pending::<()>().await;
        }
        if f.http_5xx_rate > 0.0 && fastrand::f64() < f.http_5xx_rate {
            return with_date(
                &sim,
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
            );
        }
    }
    let resp = next.run(req).await;
    with_date(&sim, resp)
}

fn with_date(sim: &Sim, mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(sim.now_system())) {
        resp.headers_mut().insert(header::DATE, v);
    }
    resp
}

// ---- OAuth ----------------------------------------------------------------------------

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if sim.faults().token_down {
        return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    }
    let form: HashMap<String, String> = form_urlencoded(&body);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let Some((id, secret)) = basic_auth(&headers) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let mut st = sim.lock();
    let ok = st
        .account
        .as_ref()
        .is_some_and(|a| a.client_id == id && a.secret_sha256 == sha256(secret.as_bytes()));
    if !ok {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    st.purge_tokens();
    let lifetime = st
        .faults
        .token_lifetime_s
        .unwrap_or(TOKEN_LIFETIME_S)
        .min(MAX_TOKEN_LIFETIME_S);
    let value: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(48)
        .collect();
    st.tokens.push_back(Token {
        value: value.clone(),
        expires: Instant::now() + Duration::from_secs(lifetime),
    });
    while st.tokens.len() > MAX_TOKENS {
        st.tokens.pop_front();
    }
    st.tokens_issued += 1;
    drop(st);
    let mut resp = axum::Json(
        json!({ "access_token": value, "token_type": "Bearer", "expires_in": lifetime }),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Decode a form-encoded body leniently (axum's `Form` would insist on the content type).
pub(crate) fn form_urlencoded(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Check `Authorization: Bearer`; `Err` is the 401 to send.
fn bearer(sim: &Sim, headers: &HeaderMap) -> Result<(), Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let mut st = sim.lock();
    st.purge_tokens();
    let ok = presented.is_some_and(|p| st.tokens.iter().any(|t| t.value == p));
    if ok {
        Ok(())
    } else {
        let mut r = oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        Err(r)
    }
}

// ---- command API ------------------------------------------------------------------------

pub(crate) fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=UTF-8")],
        body,
    )
        .into_response()
}

fn xml_error(status: StatusCode, msg: &str) -> Response {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error xmlns=\"{NS}\">{}</error>\n",
            xml_escape(msg)
        ),
    )
}

async fn command(
    State(sim): State<Arc<Sim>>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = bearer(&sim, &headers) {
        return r;
    }
    let mut params = query;
    if method == Method::POST {
        for (k, v) in form_urlencoded(&body) {
            params.entry(k).or_insert(v);
        }
    }
    match params.get("action").map(String::as_str) {
        Some("check_health") => xml(StatusCode::OK, check_health_xml(&sim)),
        Some("get_api_info") => xml(
            StatusCode::OK,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<api_information xmlns=\"{NS}\">\n  \
                 <timestamp>{}</timestamp>\n  <api_version>{API_VERSION}</api_version>\n  \
                 <permissions>\n    <perm_command>full_access</perm_command>\n    \
                 <perm_backup>1</perm_backup>\n    <perm_configuration>1</perm_configuration>\n  \
                 </permissions>\n</api_information>\n",
                sim.now().timestamp()
            ),
        ),
        Some("set_failover_role") => {
            let role = match params.get("role").map(String::as_str) {
                Some("primary") => Role::Primary,
                Some("backup") => Role::Backup,
                _ => {
                    return xml_error(
                        StatusCode::OK,
                        "Invalid or missing parameter: role (primary or backup)",
                    );
                }
            };
            let flag = |n: &str| params.get(n).map(String::as_str) == Some("1");
            match sim
                .set_failover_role(role, flag("data_sync_first"), flag("force"))
                .await
            {
                Ok(text) => xml(
                    StatusCode::OK,
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<success xmlns=\"{NS}\">{text}</success>\n"
                    ),
                ),
                Err(e) => xml_error(StatusCode::OK, &e),
            }
        }
        Some(other) => xml_error(StatusCode::OK, &format!("Invalid action: {other}")),
        None => xml_error(StatusCode::OK, "Missing required parameter: action"),
    }
}

fn iso(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The `check_health` document (see docs/simulator.md for the exact shape).
pub(crate) fn check_health_xml(sim: &Sim) -> String {
    let st = sim.lock();
    let healthy = Sim::healthy(&st);
    let mut x =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<check_health xmlns=\"{NS}\">\n");
    x.push_str(&format!(
        "  <appliance id=\"{}\">{}</appliance>\n",
        xml_escape(&sim.appliance_id),
        xml_escape(&sim.cfg.site)
    ));
    x.push_str(&format!(
        "  <version>{} (build {})</version>\n",
        xml_escape(&st.version),
        st.build
    ));
    x.push_str(&format!("  <success>{}</success>\n", u8::from(healthy)));
    if let Some(e) = &st.install_error {
        x.push_str(&format!(
            "  <error_message>{}</error_message>\n",
            xml_escape(e)
        ));
    }
    x.push_str(&format!("  <failover_role>{}</failover_role>\n", st.role));
    let in_failover = st.role != Role::None;
    if in_failover && !st.shared_ips.is_empty() {
        x.push_str("  <enabled_shared_ips>\n");
        for ip in &st.shared_ips {
            x.push_str(&format!("    <ip>{ip}</ip>\n"));
        }
        x.push_str("  </enabled_shared_ips>\n");
    }
    if in_failover {
        if let Some(t) = st.last_sync_unix {
            x.push_str(&format!(
                "  <last_data_sync_time ts=\"{t}\">{}</last_data_sync_time>\n",
                iso(t)
            ));
        }
        if let Some(s) = &st.last_sync_status {
            x.push_str(&format!(
                "  <last_data_sync_status>{}</last_data_sync_status>\n",
                xml_escape(s)
            ));
        }
    }
    x.push_str("</check_health>\n");
    x
}

async fn plain_health(State(sim): State<Arc<Sim>>) -> Response {
    let healthy = Sim::healthy(&sim.lock());
    if healthy {
        (StatusCode::OK, "OK\n").into_response()
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "ERROR\n").into_response()
    }
}

// ---- backup -------------------------------------------------------------------------------

async fn backup(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = bearer(&sim, &headers) {
        return r;
    }
    let password = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) => match v.get("password") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(p)) => Some(p.clone()),
                Some(_) => {
                    return oauth_error(StatusCode::BAD_REQUEST, "password must be a string");
                }
            },
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "body must be JSON: {\"password\": \"...\"}",
                );
            }
        }
    };
    let blob = crate::automation::make_backup(&sim, password.as_deref());
    let digest = hex(&sha256(&blob));
    {
        let mut st = sim.lock();
        st.backup_sha256 = Some(digest.clone());
        st.backups_served += 1;
    }
    sim.log(
        "backup.download",
        true,
        json!({ "sha256": digest, "bytes": blob.len(), "password_protected": password.is_some() }),
    );
    let name = format!("{}-{}.nsb", sim.cfg.name, sim.now().format("%Y%m%d%H%M%S"));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .body(Body::from(blob))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

// ---- configuration API: Jump Clients ------------------------------------------------------

async fn jump_clients(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = bearer(&sim, &headers) {
        return r;
    }
    let num = |k: &str, d: u64| -> Result<u64, Response> {
        match q.get(k) {
            None => Ok(d),
            Some(v) => v.parse::<u64>().map_err(|_| {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({ "message": format!("{k} must be a positive integer") })),
                )
                    .into_response()
            }),
        }
    };
    let per_page = match num("per_page", 100) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let page = match num("current_page", 1) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !(1..=100).contains(&per_page) || page == 0 {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "message": "per_page must be 1..100 and current_page >= 1" })),
        )
            .into_response();
    }
    let now = sim.now().timestamp();
    let st = sim.lock();
    let total = st.jump_clients as u64;
    let returned = sim.returned_clients(&st);
    let last_page = total.div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page);
    let end = start.saturating_add(per_page).min(total);
    let mut items = Vec::new();
    for i in start..end {
        let i32_ = i as u32;
        let back = i32_ < returned;
        let needs_update = st.wave.is_some() && !back;
        let last_connect = if needs_update {
            // Offline since the appliance went down for the install.
            st.wave.map(|w| w.started_unix - 1).unwrap_or(now)
        } else if st.wave.is_some() {
            sim.client_return_unix(&st, i32_)
                .unwrap_or(now)
                .min(now)
                .max(now - 30)
        } else {
            now - (i as i64 % 60)
        };
        items.push(json!({
            "id": i + 1,
            "name": format!("jump-client-{:04}", i + 1),
            "hostname": format!("host-{:04}.corp.example.test", i + 1),
            "jump_group_id": 1,
            "jump_group_type": "shared",
            "tag": "",
            "comments": "",
            "connection_type": if i % 4 == 3 { "passive" } else { "active" },
            "needs_update": needs_update,
            "last_connect_timestamp": iso(last_connect),
        }));
    }
    let serving = st.status == ApplianceStatus::Running;
    drop(st);
    if !serving {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let base = format!(
        "https://{}/api/config/v1/jump-client",
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| sim.addr.to_string())
    );
    let link =
        |p: u64, rel: &str| format!("<{base}?per_page={per_page}&current_page={p}>; rel=\"{rel}\"");
    let mut links = vec![link(1, "first")];
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    if page < last_page {
        links.push(link(page + 1, "next"));
    }
    links.push(link(last_page, "last"));
    let mut resp = axum::Json(items).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        h.insert("X-BT-Pagination-Total", v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_page.to_string()) {
        h.insert("X-BT-Pagination-Last-Page", v);
    }
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        h.insert(header::LINK, v);
    }
    resp
}
