//! The vendor APIs, as a real appliance serves them (`appliance-api.md`), and the router.
//!
//! Owns: `POST /oauth2/token`, `/api/command` (`check_health`, `set_failover_role`,
//! `get_api_info`; XML in the configured dialect's namespace and root as recorded, errors as
//! `<error>`, permissions enforced), `GET /check_health`, `/api/backup` (needs `perm_backup`),
//! `GET /api/config/v1/jump-client` (the OpenAPI's objects, paging headers and `Link`, error
//! JSON with `message`), the per-account rate limit (429, `Retry-After`, `X-RateLimit-*`), the
//! fault middleware (latency, 5xx, resets; never applied to `/_sim`) and the HTTP `Date`
//! header from the simulated clock.
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
use crate::config::{Dialect, JumpClientKind, Role};
use crate::server::ConnCtl;
use crate::sim::{MAX_TOKEN_LIFETIME_S, MAX_TOKENS, Sim, TOKEN_LIFETIME_S, sha256};
use crate::state::{ApplianceStatus, Token};

/// Command API version reported by `get_api_info`, per dialect (1.19.0 as recorded).
fn api_version(d: Dialect) -> &'static str {
    match d {
        Dialect::Bomgar => "1.19.0",
        Dialect::Beyondtrust => "1.32.0",
    }
}

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
    let path = req.uri().path();
    // Every vendor endpoint an API account calls counts; the unauthenticated plain health
    // page and the simulator's own endpoints do not.
    let limited = !path.starts_with("/_sim") && path != "/check_health";
    let mut remaining = None;
    if limited && let Some(limit) = sim.cfg.rate_limit {
        match take_request(&sim, limit) {
            Ok(left) => remaining = Some((limit, left)),
            Err(retry_after) => {
                let mut r = api_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    &format!(
                        "Rate limit exceeded: at most {} requests per second and {} per hour for this API account",
                        limit.per_second, limit.per_hour
                    ),
                );
                rate_headers(&mut r, limit, 0);
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return with_date(&sim, r);
            }
        }
    }
    if !path.starts_with("/_sim") {
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
    let mut resp = next.run(req).await;
    if let Some((limit, left)) = remaining {
        rate_headers(&mut resp, limit, left);
    }
    with_date(&sim, resp)
}

/// Counts one request of the account against both windows (sliding, real time: the time
/// scale compresses operations, not the vendor's limits). `Ok`: requests left in the tighter
/// window; `Err`: seconds until one is allowed again.
fn take_request(sim: &Sim, limit: crate::config::RateLimit) -> Result<u32, u64> {
    const SECOND: Duration = Duration::from_secs(1);
    const HOUR: Duration = Duration::from_secs(3600);
    let now = Instant::now();
    let mut st = sim.lock();
    while st
        .requests
        .front()
        .is_some_and(|t| now.duration_since(*t) >= HOUR)
    {
        st.requests.pop_front();
    }
    let in_second = st
        .requests
        .iter()
        .rev()
        .take_while(|t| now.duration_since(**t) < SECOND)
        .count();
    let in_hour = st.requests.len();
    let per_second = limit.per_second as usize;
    let per_hour = limit.per_hour as usize;
    if in_second >= per_second || in_hour >= per_hour {
        st.rate_limited += 1;
        // The request that frees a slot: the oldest of the full window.
        let wait = if in_hour >= per_hour {
            st.requests
                .get(in_hour - per_hour)
                .map(|t| HOUR.saturating_sub(now.duration_since(*t)))
        } else {
            st.requests
                .get(in_hour - in_second)
                .map(|t| SECOND.saturating_sub(now.duration_since(*t)))
        }
        .unwrap_or(SECOND);
        return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
    }
    st.requests.push_back(now);
    Ok((per_second - in_second - 1).min(per_hour - in_hour - 1) as u32)
}

/// `X-RateLimit-Limit` (the per-second limit) and `X-RateLimit-Remaining` (requests left in
/// the tighter of the two windows).
fn rate_headers(resp: &mut Response, limit: crate::config::RateLimit, left: u32) {
    let h = resp.headers_mut();
    h.insert("X-RateLimit-Limit", HeaderValue::from(limit.per_second));
    h.insert("X-RateLimit-Remaining", HeaderValue::from(left));
}

/// The Configuration API's error body: `{"error": "…", "message": "…"}`.
fn api_error(status: StatusCode, error: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "message": message })),
    )
        .into_response()
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
        let mut r = api_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The access token is missing, invalid or expired",
        );
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

fn xml_error(sim: &Sim, status: StatusCode, msg: &str) -> Response {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error xmlns=\"{}\">{}</error>\n",
            sim.cfg.dialect.namespace(),
            xml_escape(msg)
        ),
    )
}

/// The `<error>` for a call the API account's permissions do not allow.
fn permission_error(sim: &Sim, permission: &str, needed: &str) -> Response {
    xml_error(
        sim,
        StatusCode::OK,
        &format!(
            "This API account does not have the {permission} permission required for this action ({needed})"
        ),
    )
}

/// The `get_api_info` document: permissions as `<permission name="…">` as recorded.
pub(crate) fn api_info_xml(sim: &Sim) -> String {
    let d = sim.cfg.dialect;
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<api_information xmlns=\"{}\">\n\t<api_version>{}</api_version>\n\t<company_name>{}</company_name>\n\t<timestamp>{}</timestamp>\n\t<permissions>\n",
        d.namespace(),
        api_version(d),
        xml_escape(&sim.cfg.site),
        sim.now().timestamp()
    );
    for (name, value) in &sim.cfg.permissions.0 {
        x.push_str(&format!(
            "\t\t<permission name=\"{}\">{}</permission>\n",
            xml_escape(name),
            xml_escape(value)
        ));
    }
    x.push_str("\t</permissions>\n</api_information>\n");
    x
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
        Some("get_api_info") => xml(StatusCode::OK, api_info_xml(&sim)),
        Some("set_failover_role") => {
            if !sim.cfg.permissions.command_full_access() {
                return permission_error(&sim, "perm_command", "full_access");
            }
            let role = match params.get("role").map(String::as_str) {
                Some("primary") => Role::Primary,
                Some("backup") => Role::Backup,
                _ => {
                    return xml_error(
                        &sim,
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
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<success xmlns=\"{}\">{text}</success>\n",
                        sim.cfg.dialect.namespace()
                    ),
                ),
                Err(e) => xml_error(&sim, StatusCode::OK, &e),
            }
        }
        Some(other) => xml_error(&sim, StatusCode::OK, &format!("Invalid action: {other}")),
        None => xml_error(&sim, StatusCode::OK, "Missing required parameter: action"),
    }
}

/// RFC 3339 with `+00:00`, as the Configuration API writes date-times.
fn iso(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, false))
        .unwrap_or_default()
}

/// The `check_health` document in the configured dialect (docs/simulator.md shows both):
/// tab-indented with a blank line after `<appliance>` as recorded.
pub(crate) fn check_health_xml(sim: &Sim) -> String {
    let d = sim.cfg.dialect;
    let st = sim.lock();
    let healthy = Sim::healthy(&st);
    let root = d.health_root();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{}\">\n",
        d.namespace()
    );
    x.push_str(&format!(
        "\t<appliance id=\"{}\">{}</appliance>\n\n",
        xml_escape(&sim.appliance_id),
        xml_escape(&sim.hostname)
    ));
    x.push_str(&format!(
        "\t<version>{} ({}-{})</version>\n",
        xml_escape(&st.version),
        st.build,
        crate::sim::build_commit(&st.version, st.build)
    ));
    x.push_str(&format!("\t<success>{}</success>\n", u8::from(healthy)));
    if let Some(e) = &st.install_error {
        x.push_str(&format!(
            "\t<error_message>{}</error_message>\n",
            xml_escape(e)
        ));
    }
    x.push_str(&format!("\t<failover_role>{}</failover_role>\n", st.role));
    let in_failover = st.role != Role::None;
    if in_failover && !st.shared_ips.is_empty() {
        x.push_str("\t<enabled_shared_ips>\n");
        for ip in &st.shared_ips {
            x.push_str(&format!("\t\t<ip>{ip}</ip>\n"));
        }
        x.push_str("\t</enabled_shared_ips>\n");
    }
    if in_failover {
        if let Some(t) = st.last_sync_unix {
            let line = match d {
                // As recorded: no `ts`, offset `+0000`.
                Dialect::Bomgar => format!(
                    "\t<last_data_sync_time>{}</last_data_sync_time>\n",
                    DateTime::<Utc>::from_timestamp(t, 0)
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%S+0000").to_string())
                        .unwrap_or_default()
                ),
                // As documented: `ts` (UNIX) and ISO-8601 text.
                Dialect::Beyondtrust => format!(
                    "\t<last_data_sync_time ts=\"{t}\">{}</last_data_sync_time>\n",
                    iso(t)
                ),
            };
            x.push_str(&line);
        }
        if let Some(s) = &st.last_sync_status {
            x.push_str(&format!(
                "\t<last_data_sync_status>{}</last_data_sync_status>\n",
                xml_escape(s)
            ));
        }
    }
    x.push_str(&format!("</{root}>\n"));
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
    if !sim.cfg.permissions.backup() {
        return permission_error(&sim, "perm_backup", "1");
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

/// Query parameters `GET /api/config/v1/jump-client` knows (OpenAPI 1.10: paging and the
/// list filters); any other is answered 401, as the vendor documents.
const JUMP_CLIENT_PARAMS: &[&str] = &[
    "per_page",
    "current_page",
    "name",
    "jump_group_id",
    "jump_group_type",
    "tag",
    "comments",
    "connection_type",
];

async fn jump_clients(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = bearer(&sim, &headers) {
        return r;
    }
    if let Some(unknown) = q.keys().find(|k| !JUMP_CLIENT_PARAMS.contains(&k.as_str())) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            &format!("Unrecognized query parameter: {unknown}"),
        );
    }
    let num = |k: &str, d: u64| -> Result<u64, Response> {
        match q.get(k) {
            None => Ok(d),
            Some(v) => v.parse::<u64>().map_err(|_| {
                api_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    &format!("{k} must be a positive integer"),
                )
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
    if !(5..=100).contains(&per_page) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "per_page must be between 5 and 100",
        );
    }
    if page == 0 {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "current_page must be 1 or more",
        );
    }
    let now = sim.now().timestamp();
    let st = sim.lock();
    if st.status != ApplianceStatus::Running {
        drop(st);
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The appliance is not serving",
        );
    }
    let total = Sim::jump_client_count(&st);
    let returned = sim.returned_clients(&st);
    let last_page = total.div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page);
    let end = start.saturating_add(per_page).min(total);
    let mut items = Vec::new();
    for i in start..end {
        let c = sim.jump_client(&st, i, now, returned);
        let n = i + 1;
        let connection_type = match c.kind {
            Some(JumpClientKind::Passive) => "passive",
            Some(JumpClientKind::Uninstalled) => "uninstalled",
            _ => "active",
        };
        let os = if n % 3 == 0 {
            "Ubuntu 24.04.1 LTS"
        } else {
            "Windows Server 2022 Standard"
        };
        items.push(json!({
            "id": n,
            "name": format!("jump-client-{n:04}"),
            "hostname": format!("host-{n:04}"),
            "fqdn": format!("host-{n:04}.corp.example.test"),
            "jump_group_id": 1,
            "jump_group_type": "shared",
            "tag": "",
            "comments": "",
            "connection_type": connection_type,
            "needs_update": c.needs_update,
            "last_connect_timestamp": iso(c.last_connect),
            "last_disconnect_timestamp": c.last_disconnect.map(iso),
            "is_lost": c.kind == Some(JumpClientKind::Lost),
            "unavailable_reason": "none",
            "operating_system": os,
            "public_ip": format!("198.51.100.{}", n % 250 + 1),
            "private_ip": format!("10.20.{}.{}", (n / 250) % 250, n % 250 + 1),
            "console_user": if connection_type == "active" { json!("svc-ops") } else { json!(null) },
            "expiration_timestamp": null,
            "install_mode": "normal",
            "jump_policy_id": null,
            "session_policy_id": null,
        }));
    }
    drop(st);
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
        links.push(link((page - 1).min(last_page), "previous"));
    }
    if page < last_page {
        links.push(link(page + 1, "next"));
    }
    links.push(link(last_page, "last"));
    let mut resp = axum::Json(items).into_response();
    let h = resp.headers_mut();
    h.insert("X-BT-Pagination-Current-Page", HeaderValue::from(page));
    h.insert("X-BT-Pagination-Per-Page", HeaderValue::from(per_page));
    h.insert("X-BT-Pagination-Last-Page", HeaderValue::from(last_page));
    h.insert("X-BT-Pagination-Total", HeaderValue::from(total));
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        h.insert(header::LINK, v);
    }
    resp
}
