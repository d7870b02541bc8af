//! `/_sim/...`: what a person would click at the appliance UI, plus state, fault knobs and
//! the appliance-to-appliance calls of a failover pair.
//!
//! Owns: the JSON automation endpoints documented in `docs/simulator.md` (install, shared
//! IP, establish / break / sync now, keys, certificates, backup restore, factory reset,
//! Vault key, Jump Client throttle and follow-up, state, faults) and `/_sim/peer/*`, which
//! only answers callers presenting the inter-appliance key. Also the backup file format.
//!
//! Must not: be needed by the production path (nothing but `operator: sim` and tests call
//! it); return secrets (the API secret and the inter-appliance key are never echoed).

// Handlers return an early `Response` as the error of small helpers; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ca::{Leaf, hex};
use crate::config::{Fault, Role};
use crate::sim::{Sim, sha256};
use crate::state::{Account, ApplianceStatus, StoredCert};

pub(crate) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/state", get(state))
        .route("/_sim/faults", get(get_faults).post(post_faults))
        .route("/_sim/install", post(install))
        .route("/_sim/shared-ip", post(shared_ip))
        .route("/_sim/establish", post(establish))
        .route("/_sim/break", post(break_))
        .route("/_sim/sync-now", post(sync_now))
        .route("/_sim/key", post(set_key))
        .route("/_sim/confirm-keys", post(confirm_keys))
        .route("/_sim/certificates/export", post(cert_export))
        .route("/_sim/certificates/import", post(cert_import))
        .route("/_sim/certificates/default", post(cert_default))
        .route("/_sim/restore", post(restore))
        .route("/_sim/factory-reset", post(factory_reset))
        .route("/_sim/vault-key", post(vault_key))
        .route("/_sim/clients/throttle", post(client_throttle))
        .route("/_sim/clients/followup", post(client_followup))
        .route("/_sim/peer/establish", post(peer_establish))
        .route("/_sim/peer/sync", post(peer_sync))
        .route("/_sim/peer/break", post(peer_break))
        .route("/_sim/peer/role", post(peer_role))
        .route("/_sim/peer/keys", post(peer_keys))
}

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "ok": false, "error": msg.into() }))).into_response()
}

/// Parse an optional JSON body (empty = `{}`).
fn body<T: for<'de> Deserialize<'de> + Default>(raw: &[u8]) -> Result<T, Response> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw)
        .map_err(|e| err(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

macro_rules! parse_body {
    ($t:ty, $raw:expr) => {
        match body::<$t>(&$raw) {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

async fn state(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.snapshot()).into_response()
}

async fn get_faults(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.faults()).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FaultsReq {
    #[serde(default)]
    set: Vec<String>,
    #[serde(default)]
    clear_all: bool,
}

async fn post_faults(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(FaultsReq, raw);
    let mut parsed = Vec::new();
    for s in &req.set {
        match s.parse::<Fault>() {
            Ok(f) => parsed.push(f),
            Err(e) => return err(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    sim.set_faults_with(|f| {
        if req.clear_all {
            *f = Default::default();
        }
        for p in parsed {
            f.apply(p);
        }
    });
    Json(sim.faults()).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InstallReq {
    #[serde(default)]
    packages: Vec<String>,
    /// Install whatever chain leads to this version.
    version: Option<String>,
}

async fn install(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(InstallReq, raw);
    let mut packages = req.packages;
    if packages.is_empty() {
        let st = sim.lock();
        packages = st
            .catalogue
            .iter()
            .filter(|p| !p.installed)
            .filter(|p| match &req.version {
                None => true,
                Some(v) => p.version.is_none() || p.version.as_ref() == Some(v),
            })
            .map(|p| p.name.clone())
            .collect();
    }
    let (plan, total_s) = match sim.plan_install(&packages) {
        Ok(p) => p,
        Err(e) => {
            sim.log(
                "install.rejected",
                false,
                json!({ "packages": packages, "error": e }),
            );
            return err(StatusCode::CONFLICT, e);
        }
    };
    {
        let mut st = sim.lock();
        st.status = ApplianceStatus::Installing;
        st.tokens.clear();
    }
    let real = sim.scaled(total_s);
    sim.log(
        "install.started",
        true,
        json!({ "packages": packages, "sim_duration_s": total_s }),
    );
    // Refuse connections from now on; this response still goes out.
    sim.stop_listeners().await;
    let task = sim.clone().run_install(plan, total_s);
    sim.tracker.spawn(task);
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "ok": true,
            "packages": packages,
            "sim_duration_s": total_s,
            "real_ms": real.as_millis() as u64,
        })),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SharedIpReq {
    address: Option<IpAddr>,
    enabled: Option<bool>,
}

async fn shared_ip(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(SharedIpReq, raw);
    let (Some(ip), Some(enabled)) = (req.address, req.enabled) else {
        return err(
            StatusCode::BAD_REQUEST,
            "need {\"address\": IP, \"enabled\": bool}",
        );
    };
    if enabled {
        if let Err(e) = sim.enable_shared_ip(ip).await {
            sim.log(
                "shared-ip.enabled",
                false,
                json!({ "address": ip, "error": e.to_string() }),
            );
            return err(StatusCode::CONFLICT, e.to_string());
        }
    } else {
        sim.disable_shared_ip(ip).await;
    }
    let ips: Vec<IpAddr> = sim.lock().shared_ips.iter().copied().collect();
    Json(json!({ "ok": true, "shared_ips": ips })).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EstablishReq {
    /// `IP`, `IP:PORT` or `HOST:PORT` of the backup.
    backup_address: Option<String>,
    peer_port: Option<u16>,
}

fn peer_addr(addr: &str, port: Option<u16>, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port.unwrap_or(default_port)));
    }
    Err(format!("backup_address {addr:?} must be an IP or IP:PORT"))
}

async fn establish(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(EstablishReq, raw);
    let Some(a) = req.backup_address else {
        return err(StatusCode::BAD_REQUEST, "backup_address is required");
    };
    let backup = match peer_addr(&a, req.peer_port, sim.addr.port()) {
        Ok(b) => b,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    match sim.establish(backup).await {
        Ok(v) => Json(json!({ "ok": true, "result": v })).into_response(),
        Err(e) => err(StatusCode::CONFLICT, e),
    }
}

async fn break_(State(sim): State<Arc<Sim>>) -> Response {
    let d = sim.break_relationship().await;
    Json(json!({ "ok": true, "result": d })).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SyncReq {
    #[serde(default)]
    wait: bool,
}

async fn sync_now(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(SyncReq, raw);
    {
        let st = sim.lock();
        if st.role != Role::Primary || st.peer.is_none() {
            return err(
                StatusCode::CONFLICT,
                format!(
                    "Sync Now needs a primary in a relationship (role {})",
                    st.role
                ),
            );
        }
    }
    let expected = sim.sync_duration_s();
    if req.wait {
        match sim.run_sync("sync now").await {
            Ok(d) => {
                Json(json!({ "ok": true, "sim_duration_s": d, "completed": true })).into_response()
            }
            Err(e) => err(StatusCode::BAD_GATEWAY, e),
        }
    } else {
        let me = sim.clone();
        sim.tracker.spawn(async move {
            let _ = me.run_sync("sync now").await;
        });
        (
            StatusCode::ACCEPTED,
            Json(json!({ "ok": true, "sim_duration_s": expected, "completed": false })),
        )
            .into_response()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KeyReq {
    key: Option<String>,
}

async fn set_key(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(KeyReq, raw);
    let Some(k) = req.key.filter(|k| !k.is_empty()) else {
        return err(StatusCode::BAD_REQUEST, "key is required");
    };
    sim.lock().key = Some(k);
    sim.log("failover.key-set", true, json!({}));
    Json(json!({ "ok": true })).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfirmKeysReq {
    /// Defaults to the current peer.
    peer: Option<String>,
}

async fn confirm_keys(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(ConfirmKeysReq, raw);
    let peer = match req.peer {
        Some(p) => match peer_addr(&p, None, sim.addr.port()) {
            Ok(a) => Some(a),
            Err(e) => return err(StatusCode::BAD_REQUEST, e),
        },
        None => sim.lock().peer,
    };
    let Some(peer) = peer else {
        return err(StatusCode::BAD_REQUEST, "no peer given and none configured");
    };
    let res = sim.peer_call(peer, "keys", json!({})).await;
    let identical = res.is_ok();
    let detail = json!({ "peer": peer, "identical": identical, "error": res.as_ref().err() });
    sim.log("failover.keys", identical, detail);
    match res {
        Ok(_) => Json(json!({ "ok": true, "identical": true })).into_response(),
        Err(e) if e.contains("unreachable") => err(StatusCode::BAD_GATEWAY, e),
        Err(e) => (
            StatusCode::CONFLICT,
            Json(json!({ "ok": false, "identical": false, "error": e })),
        )
            .into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExportReq {
    passphrase: Option<String>,
}

async fn cert_export(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(ExportReq, raw);
    if req.passphrase.as_deref().unwrap_or("").is_empty() {
        return err(StatusCode::BAD_REQUEST, "passphrase is required");
    }
    let (bundle, fp) = {
        let st = sim.lock();
        let Some(c) = st.certs.get(st.default_cert) else {
            return err(StatusCode::CONFLICT, "no certificate");
        };
        (
            format!("{}{}", c.leaf.chain_pem, c.leaf.key_pem),
            c.leaf.leaf_sha256(),
        )
    };
    sim.log("certificates.export", true, json!({ "leaf_sha256": fp }));
    Json(json!({ "ok": true, "bundle_pem": bundle, "leaf_sha256": fp })).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ImportReq {
    bundle_pem: Option<String>,
    passphrase: Option<String>,
    name: Option<String>,
}

async fn cert_import(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(ImportReq, raw);
    if req.passphrase.as_deref().unwrap_or("").is_empty() {
        return err(StatusCode::BAD_REQUEST, "passphrase is required");
    }
    let Some(bundle) = req.bundle_pem else {
        return err(StatusCode::BAD_REQUEST, "bundle_pem is required");
    };
    let leaf = match Leaf::from_bundle(&bundle) {
        Ok(l) => l,
        Err(e) => {
            sim.log(
                "certificates.import",
                false,
                json!({ "error": e.to_string() }),
            );
            return err(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let fp = leaf.leaf_sha256();
    let name = {
        let mut st = sim.lock();
        let name = req
            .name
            .unwrap_or_else(|| format!("imported-{}", st.certs.len()));
        st.certs.push(StoredCert {
            name: name.clone(),
            leaf,
        });
        name
    };
    sim.log(
        "certificates.import",
        true,
        json!({ "name": name, "leaf_sha256": fp }),
    );
    Json(json!({ "ok": true, "name": name, "leaf_sha256": fp })).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DefaultReq {
    name: Option<String>,
    leaf_sha256: Option<String>,
}

async fn cert_default(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(DefaultReq, raw);
    let picked = {
        let st = sim.lock();
        st.certs.iter().position(|c| {
            req.name.as_ref().is_some_and(|n| &c.name == n)
                || req
                    .leaf_sha256
                    .as_ref()
                    .is_some_and(|f| c.leaf.leaf_sha256().eq_ignore_ascii_case(f))
        })
    };
    let Some(idx) = picked else {
        return err(
            StatusCode::NOT_FOUND,
            "no such certificate (give name or leaf_sha256)",
        );
    };
    let (key, fp) = {
        let st = sim.lock();
        let Some(c) = st.certs.get(idx) else {
            return err(StatusCode::NOT_FOUND, "no such certificate");
        };
        (c.leaf.certified_key(), c.leaf.leaf_sha256())
    };
    match key {
        Ok(k) => {
            sim.resolver.set(k);
            sim.lock().default_cert = idx;
            sim.log("certificates.default", true, json!({ "leaf_sha256": fp }));
            Json(json!({ "ok": true, "leaf_sha256": fp })).into_response()
        }
        Err(e) => err(StatusCode::CONFLICT, e.to_string()),
    }
}

// ---- backup / restore ------------------------------------------------------------------

const BACKUP_MAGIC: &[u8] = b"SWING-SIM-NSB/1\n";

/// Build a backup file: magic line, a JSON header line (salt and password verifier, never the
/// password), then the JSON configuration (API account as a SHA-256 verifier only).
pub(crate) fn make_backup(sim: &Sim, password: Option<&str>) -> Vec<u8> {
    let salt: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    let verifier = password.map(|p| {
        let mut v = salt.to_vec();
        v.extend_from_slice(p.as_bytes());
        hex(&sha256(&v))
    });
    let now = sim.now();
    let st = sim.lock();
    let header = json!({ "salt": hex(&salt), "password_verifier": verifier, "created_unix": now.timestamp() });
    let payload = json!({
        "appliance_id": sim.appliance_id,
        "name": sim.cfg.name,
        "site": sim.cfg.site,
        "version": st.version,
        "api_account": st.account.as_ref().map(|a| json!({ "client_id": a.client_id, "secret_sha256": hex(&a.secret_sha256) })),
        "jump_clients": st.jump_clients,
        "jump_client_groups": st.jump_client_groups,
        "jump_client_throttle": st.throttle,
        "data_mb": st.data_mb,
    });
    let mut out = BACKUP_MAGIC.to_vec();
    out.extend_from_slice(header.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload.to_string().as_bytes());
    out.push(b'\n');
    out
}

fn parse_backup(blob: &[u8], password: Option<&str>) -> Result<Value, String> {
    let rest = blob
        .strip_prefix(BACKUP_MAGIC)
        .ok_or("not a simulator backup file")?;
    let mut lines = rest.splitn(3, |b| *b == b'\n');
    let header: Value = serde_json::from_slice(lines.next().unwrap_or_default())
        .map_err(|_| "corrupt backup header")?;
    let payload: Value = serde_json::from_slice(lines.next().unwrap_or_default())
        .map_err(|_| "corrupt backup data")?;
    if let Some(v) = header.get("password_verifier").and_then(Value::as_str) {
        let salt = header
            .get("salt")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let salt_bytes: Vec<u8> = (0..salt.len() / 2)
            .filter_map(|i| u8::from_str_radix(salt.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let p = password.ok_or("the backup is password-protected; password is required")?;
        let mut t = salt_bytes;
        t.extend_from_slice(p.as_bytes());
        if hex(&sha256(&t)) != v {
            return Err("wrong backup password".into());
        }
    }
    Ok(payload)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RestoreReq {
    backup_base64: Option<String>,
    password: Option<String>,
}

async fn restore(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(RestoreReq, raw);
    let Some(b64) = req.backup_base64 else {
        return err(StatusCode::BAD_REQUEST, "backup_base64 is required");
    };
    let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return err(StatusCode::BAD_REQUEST, "backup_base64 is not base64");
    };
    let payload = match parse_backup(&blob, req.password.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            sim.log("backup.restore", false, json!({ "error": e }));
            return err(StatusCode::BAD_REQUEST, e);
        }
    };
    let account = payload.get("api_account").and_then(|a| {
        let id = a.get("client_id")?.as_str()?.to_string();
        let h = a.get("secret_sha256")?.as_str()?;
        let bytes: Vec<u8> = (0..h.len() / 2)
            .filter_map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        Some(Account {
            client_id: id,
            secret_sha256: bytes.try_into().ok()?,
        })
    });
    {
        let mut st = sim.lock();
        st.account = account;
        st.tokens.clear();
        if let Some(n) = payload.get("jump_clients").and_then(Value::as_u64) {
            st.jump_clients = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(g) = payload
            .get("jump_client_groups")
            .and_then(|g| serde_json::from_value(g.clone()).ok())
        {
            st.jump_client_groups = g;
        }
        if let Some(n) = payload.get("jump_client_throttle").and_then(Value::as_u64) {
            st.throttle = u32::try_from(n).unwrap_or(u32::MAX);
        }
    }
    let from = payload.get("name").cloned().unwrap_or(Value::Null);
    sim.log(
        "backup.restore",
        true,
        json!({ "from": from, "sha256": hex(&sha256(&blob)) }),
    );
    Json(json!({ "ok": true, "restored_from": from })).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FactoryResetReq {
    #[serde(default)]
    power_off: bool,
}

async fn factory_reset(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(FactoryResetReq, raw);
    let ips: Vec<IpAddr> = sim.lock().shared_ips.iter().copied().collect();
    for ip in ips {
        sim.disable_shared_ip(ip).await;
    }
    {
        let mut st = sim.lock();
        st.account = None;
        st.tokens.clear();
        st.role = Role::None;
        st.peer = None;
        st.key = None;
        st.last_sync_unix = None;
        st.last_sync_status = None;
        st.jump_clients = 0;
        st.jump_client_groups.clear();
        st.wave = None;
        st.backup_sha256 = None;
        st.certs.truncate(1);
        st.default_cert = 0;
        if let Some(Ok(k)) = st.certs.first().map(|c| c.leaf.certified_key()) {
            sim.resolver.set(k);
        }
        if req.power_off {
            st.status = ApplianceStatus::PoweredOff;
        }
    }
    sim.log("factory-reset", true, json!({ "power_off": req.power_off }));
    if req.power_off {
        sim.stop_listeners().await;
    }
    Json(json!({ "ok": true, "power_off": req.power_off })).into_response()
}

async fn vault_key(State(sim): State<Arc<Sim>>) -> Response {
    sim.lock().vault_key_backed_up = true;
    let fp = hex(&sha256(format!("vault:{}", sim.appliance_id).as_bytes()));
    sim.log(
        "vault-key.backup",
        true,
        json!({ "vault_key_fingerprint": fp }),
    );
    Json(json!({ "ok": true, "vault_key_fingerprint": fp })).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ThrottleReq {
    max_concurrent_upgrades: Option<u32>,
}

async fn client_throttle(State(sim): State<Arc<Sim>>, raw: axum::body::Bytes) -> Response {
    let req = parse_body!(ThrottleReq, raw);
    let Some(n) = req.max_concurrent_upgrades.filter(|n| *n > 0) else {
        return err(
            StatusCode::BAD_REQUEST,
            "max_concurrent_upgrades (> 0) is required",
        );
    };
    sim.lock().throttle = n;
    sim.log(
        "clients.throttle",
        true,
        json!({ "max_concurrent_upgrades": n }),
    );
    Json(json!({ "ok": true, "max_concurrent_upgrades": n })).into_response()
}

async fn client_followup(State(sim): State<Arc<Sim>>) -> Response {
    sim.log(
        "clients.followup",
        true,
        json!({ "integration_clients": "reinstalled", "installers": "regenerated" }),
    );
    Json(json!({ "ok": true })).into_response()
}

// ---- peer (appliance to appliance) ------------------------------------------------------

fn peer_auth(sim: &Sim, headers: &HeaderMap) -> Result<(), Response> {
    let presented = headers.get("X-Sim-Peer-Key").and_then(|v| v.to_str().ok());
    if sim.key_matches(presented) {
        Ok(())
    } else {
        Err(err(StatusCode::FORBIDDEN, "inter-appliance key mismatch"))
    }
}

#[derive(Deserialize, Default)]
struct PeerEstablish {
    primary: Option<SocketAddr>,
    version: Option<String>,
}

async fn peer_establish(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Response {
    if let Err(r) = peer_auth(&sim, &headers) {
        sim.log(
            "failover.establish",
            false,
            json!({ "as": "backup", "error": "inter-appliance key mismatch" }),
        );
        return r;
    }
    let req = parse_body!(PeerEstablish, raw);
    let Some(primary) = req.primary else {
        return err(StatusCode::BAD_REQUEST, "primary is required");
    };
    let mine = {
        let mut st = sim.lock();
        if req.version.as_deref() != Some(st.version.as_str()) {
            let e = format!(
                "version mismatch: primary runs {}, this appliance runs {}",
                req.version.as_deref().unwrap_or("?"),
                st.version
            );
            drop(st);
            sim.log(
                "failover.establish",
                false,
                json!({ "as": "backup", "error": e }),
            );
            return err(StatusCode::CONFLICT, e);
        }
        if st.role != Role::None && st.peer.is_some_and(|p| p != primary) {
            return err(
                StatusCode::CONFLICT,
                "already in a failover relationship with another appliance",
            );
        }
        st.role = Role::Backup;
        st.peer = Some(primary);
        st.last_sync_status = Some("Waiting for first sync".into());
        sim.appliance_id.clone()
    };
    sim.log(
        "failover.establish",
        true,
        json!({ "role": "backup", "peer": primary }),
    );
    Json(json!({ "ok": true, "appliance_id": mine })).into_response()
}

#[derive(Deserialize, Default)]
struct PeerSync {
    completed_unix: Option<i64>,
}

async fn peer_sync(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Response {
    if let Err(r) = peer_auth(&sim, &headers) {
        return r;
    }
    let req = parse_body!(PeerSync, raw);
    {
        let mut st = sim.lock();
        if st.role != Role::Backup {
            return err(
                StatusCode::CONFLICT,
                format!("this appliance is {}, not backup", st.role),
            );
        }
        st.last_sync_unix = Some(
            req.completed_unix
                .unwrap_or_else(|| chrono::Utc::now().timestamp()),
        );
        st.last_sync_status = Some("Success".into());
    }
    sim.log("failover.sync.received", true, json!({}));
    Json(json!({ "ok": true })).into_response()
}

async fn peer_break(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if let Err(r) = peer_auth(&sim, &headers) {
        return r;
    }
    {
        let mut st = sim.lock();
        st.role = Role::None;
        st.peer = None;
    }
    sim.log("failover.break", true, json!({ "by": "peer" }));
    Json(json!({ "ok": true })).into_response()
}

#[derive(Deserialize, Default)]
struct PeerRole {
    role: Option<Role>,
    synced_unix: Option<i64>,
}

async fn peer_role(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Response {
    if let Err(r) = peer_auth(&sim, &headers) {
        return r;
    }
    let req = parse_body!(PeerRole, raw);
    let Some(role) = req.role.filter(|r| *r != Role::None) else {
        return err(StatusCode::BAD_REQUEST, "role must be primary or backup");
    };
    {
        let mut st = sim.lock();
        if st.peer.is_none() {
            return err(StatusCode::CONFLICT, "not in a failover relationship");
        }
        st.role = role;
        if let Some(t) = req.synced_unix {
            st.last_sync_unix = Some(t);
            st.last_sync_status = Some("Success".into());
        }
    }
    sim.log("failover.role", true, json!({ "role": role, "by": "peer" }));
    Json(json!({ "ok": true })).into_response()
}

async fn peer_keys(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if let Err(r) = peer_auth(&sim, &headers) {
        return r;
    }
    Json(json!({ "ok": true })).into_response()
}
