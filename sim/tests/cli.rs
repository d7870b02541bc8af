//! The `swing-sim` binary: the command-line contract (one JSON ready line on stdout) and the
//! curl check of "Done when": check_health with a token from /oauth2/token, CA verified.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the child simulator (by its own handle) when the test ends, however it ends.
struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn ready_line_and_curl_check_health() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_swing-sim"))
        .args([
            "--name",
            "a",
            "--listen",
            "127.0.0.1:0",
            "--site",
            "access.example.test",
        ])
        .args(["--version", "24.3.1", "--update-to", "25.1.3"])
        .arg("--ca-dir")
        .arg(dir.path())
        .args(["--client-id", common::ID, "--client-secret", common::SECRET])
        .args(["--time-scale", "0.001", "--fault", "latency=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("swing-sim starts");
    let mut child = Kill(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 3, "exactly ready, name, url: {line}");
    assert_eq!(v["ready"], true);
    assert_eq!(v["name"], "a");
    let url = v["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("https://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );
    assert!(
        line.starts_with(r#"{"ready":true,"name":"a","url":"https://"#),
        "{line}"
    );

    let ca = dir.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let token_json = curl(&[
        "--cacert",
        ca,
        "-u",
        &format!("{}:{}", common::ID, common::SECRET),
        "-d",
        "grant_type=client_credentials",
        &format!("{url}/oauth2/token"),
    ]);
    let tok: serde_json::Value = serde_json::from_str(&token_json).unwrap();
    let tok = tok["access_token"].as_str().unwrap();
    let xml = curl(&[
        "--cacert",
        ca,
        "-H",
        &format!("Authorization: Bearer {tok}"),
        &format!("{url}/api/command?action=check_health"),
    ]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(common::xml_field(&doc, "success").as_deref(), Some("1"));
    assert!(
        common::xml_field(&doc, "version")
            .unwrap()
            .starts_with("24.3.1")
    );
    // Without the CA, curl refuses the certificate.
    let out = Command::new("curl")
        .args(["-sS", &format!("{url}/check_health")])
        .output()
        .unwrap();
    assert!(!out.status.success(), "TLS is verified");
}

#[test]
fn help_documents_the_flags_and_faults() {
    let out = Command::new(env!("CARGO_BIN_EXE_swing-sim"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--name",
        "--listen",
        "--site",
        "--version",
        "--update-to",
        "--ca-dir",
        "--client-id",
        "--client-secret",
        "--role",
        "--peer",
        "--key",
        "--shared-ip",
        "--time-scale",
        "--fault",
        "install-hangs",
        "clients-never-return",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

#[test]
fn bad_fault_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swing-sim"))
        .args([
            "--name",
            "a",
            "--client-id",
            "x",
            "--client-secret",
            "y",
            "--fault",
            "bogus",
        ])
        .arg("--ca-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown fault"));
}
