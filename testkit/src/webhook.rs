//! A webhook receiver on loopback for the notification tests: it records every POST (the
//! `X-Swing-Signature` header and the body) and answers with a fixed status; and the check of
//! a signature as a receiver does it (HMAC-SHA256 over the body, `sha256=<hex>`).
//!
//! Owns: the receiving side of `notify` webhooks in tests. Must not: listen anywhere but
//! 127.0.0.1, or outlive the test's runtime.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};

/// What the receiver got, in order: (`X-Swing-Signature`, body).
pub type Got = Arc<Mutex<Vec<(Option<String>, Vec<u8>)>>>;

/// Starts a receiver on 127.0.0.1 answering `status` to every POST; returns its base URL
/// (`http://127.0.0.1:PORT`, any path is accepted) and what it got.
pub async fn receiver(status: StatusCode) -> (String, Got) {
    let got: Got = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                let sig = headers
                    .get("x-swing-signature")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                keep.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((sig, body.to_vec()));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the receiver");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), got)
}

/// The bodies got so far, as JSON.
pub fn events(got: &Got) -> Vec<serde_json::Value> {
    got.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(_, b)| serde_json::from_slice(b).expect("a JSON body"))
        .collect()
}

/// Whether `sig` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `key`.
pub fn verify_signature(key: &[u8], sig: &str, body: &[u8]) -> bool {
    let Some(hex) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(tag) = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::verify(&key, body, &tag).is_ok()
}
