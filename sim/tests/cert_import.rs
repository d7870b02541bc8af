//! `/_sim/certificates/import` takes a PEM bundle as people hand them over: the blocks in any
//! order (key first, key last, key between the certificates), CRLF line endings, text around
//! the blocks (`openssl pkcs12 -nodes` writes "Bag Attributes"). The imported leaf is the one
//! exported, and made default it is what clients are served. Bundles without a key, without a
//! certificate, or whose key belongs to another certificate are refused with 400.

mod common;

use common::*;
use serde_json::{Value, json};

/// The PEM blocks of a bundle, each with its BEGIN and END lines.
fn blocks(bundle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in bundle.lines() {
        if line.starts_with("-----BEGIN ") {
            cur.clear();
        }
        cur.push_str(line);
        cur.push('\n');
        if line.starts_with("-----END ") {
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

async fn import(http: &reqwest::Client, base: &str, bundle: &str, name: &str) -> (u16, Value) {
    sim_post(
        http,
        base,
        "/_sim/certificates/import",
        json!({ "bundle_pem": bundle, "passphrase": "p", "name": name }),
    )
    .await
}

#[tokio::test]
async fn bundles_import_whatever_the_order_of_their_pem_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let old = start(config("old", dir.path())).await;
    let new = start(config("new", dir.path())).await;
    let http = client(&old);
    let (s, exp) = sim_post(
        &http,
        &old.url(),
        "/_sim/certificates/export",
        json!({ "passphrase": "p" }),
    )
    .await;
    assert_eq!(s, 200, "{exp}");
    let fp = exp["leaf_sha256"].as_str().unwrap().to_string();
    let bundle = exp["bundle_pem"].as_str().unwrap().to_string();
    let all = blocks(&bundle);
    let (keys, certs): (Vec<String>, Vec<String>) =
        all.iter().cloned().partition(|b| b.contains("PRIVATE KEY"));
    assert_eq!(keys.len(), 1, "one key in {all:?}");
    assert!(!certs.is_empty(), "certificates in the export");

    let key = &keys[0];
    let chain = certs.concat();
    let mut variants = vec![
        ("as-exported", bundle.clone()),
        ("key-first", format!("{key}{chain}")),
        ("key-last", format!("{chain}{key}")),
        ("crlf", format!("{key}{chain}").replace('\n', "\r\n")),
        (
            "with-text",
            format!(
                "Bag Attributes\n    localKeyID: 01\nKey Attributes: <No Attributes>\n{key}\
                 subject=CN=access.example.test\nissuer=CN=swing-sim CA\n{chain}trailing words\n"
            ),
        ),
    ];
    if certs.len() > 1 {
        // Leaf, key, then the rest of the chain.
        variants.push((
            "key-inside-chain",
            format!("{}{key}{}", certs[0], certs[1..].concat()),
        ));
    }
    for (name, b) in &variants {
        let (s, v) = import(&http, &new.url(), b, name).await;
        assert_eq!(s, 200, "{name}: {v}");
        assert_eq!(v["leaf_sha256"].as_str(), Some(fp.as_str()), "{name}: {v}");
    }
    // Made default, the imported leaf (from the key-last bundle) is what clients are served.
    let (s, v) = sim_post(
        &http,
        &new.url(),
        "/_sim/certificates/default",
        json!({ "name": "key-last" }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["leaf_sha256"].as_str(), Some(fp.as_str()));
    let st = new.state();
    let defaults: Vec<_> = st.certificates.iter().filter(|c| c.default).collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0].leaf_sha256, fp);
    let ca = reqwest::Certificate::from_pem(new.ca_pem().as_bytes()).unwrap();
    let site = reqwest::Client::builder()
        .tls_certs_only([ca])
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .resolve("access.example.test", new.addr())
        .build()
        .unwrap();
    let r = site
        .get(format!(
            "https://access.example.test:{}/check_health",
            new.addr().port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .map(|der| {
            use sha2::Digest as _;
            sha2::Sha256::digest(der)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
    assert_eq!(served.as_deref(), Some(fp.as_str()), "the served leaf");

    // Refused: no key, no certificate, a key that belongs to another certificate.
    let (_, other) = sim_post(
        &http,
        &new.url(),
        "/_sim/certificates/export",
        json!({ "passphrase": "p" }),
    )
    .await;
    let other_key: String = blocks(other["bundle_pem"].as_str().unwrap())
        .into_iter()
        .filter(|b| b.contains("PRIVATE KEY"))
        .collect();
    let new_own = start(config("third", dir.path())).await;
    let (_, third) = sim_post(
        &http,
        &new_own.url(),
        "/_sim/certificates/export",
        json!({ "passphrase": "p" }),
    )
    .await;
    let third_key: String = blocks(third["bundle_pem"].as_str().unwrap())
        .into_iter()
        .filter(|b| b.contains("PRIVATE KEY"))
        .collect();
    assert!(!other_key.is_empty() && !third_key.is_empty());
    for (name, b, says) in [
        ("no-key", chain.clone(), "no PRIVATE KEY"),
        ("no-cert", key.clone(), "no CERTIFICATE"),
        ("wrong-key", format!("{third_key}{chain}"), "do not fit"),
        (
            "two-keys",
            format!("{key}{chain}{third_key}"),
            "more than one",
        ),
        ("garbage", "not pem at all".to_string(), "no CERTIFICATE"),
    ] {
        let (s, v) = import(&http, &new.url(), &b, name).await;
        assert_eq!(s, 400, "{name}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{name}: {msg}");
        assert!(
            !msg.contains("BEGIN"),
            "{name}: the error must not echo key material: {msg}"
        );
    }
    assert!(
        !new.state().certificates.iter().any(|c| [
            "no-key",
            "no-cert",
            "wrong-key",
            "two-keys",
            "garbage"
        ]
        .contains(&c.name.as_str())),
        "refused bundles are not stored"
    );
}
