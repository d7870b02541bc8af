//! The `nftables` NAT provider: finds the site's DNAT rule for a public `address:port` in one
//! nftables chain and swings it to another appliance in ONE nft transaction.
//!
//! Owns: driving the `nft` binary with JSON (`nft -j list chain …` to read, `nft -j -f -` to
//! write a batch), optionally inside a network namespace (`ip netns exec NAME nft …`), finding
//! the rule by what it matches (`<family> daddr <public ip>` and `tcp|th dport <public port>`,
//! plus a `dnat` statement), the swing as `add` (after the old rule, same expressions, new
//! `dnat` target, comment `swing:<plan>`) + `delete` (the old rule by handle) in one batch,
//! read-back verification, and a best-effort flush of the old target's conntrack entries.
//!
//! Why hand-written JSON and not the `nftables` crate's types: the site's rule usually predates
//! swing and may hold statements a typed model drops or rewrites (counters, logs, flags); swing
//! copies the rule's expressions verbatim and changes only the `dnat` target. The crate's
//! `Replace` command is also serialised wrongly by nftables 0.6, which is why the swing is
//! delete + add.
//!
//! Must not: touch any rule other than the one matching `public`, retry a write, leave the
//! chain without a rule for `public` at any observable point (the batch is one transaction),
//! or print to the terminal.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use swing_engine::provider::{
    ErrorKind, NatObservation, NatProvider, ProviderError, ProviderResult,
};
use swing_schema::plan::NftablesProvider;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Longest stderr excerpt put into an error message.
const STDERR_MAX: usize = 2000;

/// What the best-effort conntrack flush after a swing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConntrackFlush {
    /// Flushing is switched off ([`NftablesNat::with_conntrack_flush`]).
    Disabled,
    /// `conntrack -D` ran; this many entries of the old target were deleted.
    Deleted(u64),
    /// `conntrack` could not run or failed; the swing itself succeeded.
    Failed(String),
}

/// A rule in the chain that matches the public address and port.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedRule {
    /// nftables rule handle.
    pub handle: u64,
    /// 0-based position of the rule in its chain when it was listed.
    pub index: usize,
    /// Where the `dnat` statement sends traffic.
    pub target: SocketAddr,
    /// The rule's comment, if any.
    pub comment: Option<String>,
    /// The rule's expressions exactly as nft listed them.
    pub expr: Vec<Value>,
}

/// The nftables NAT provider for one `family table chain` (optionally in a network namespace).
#[derive(Debug)]
pub struct NftablesNat {
    family: String,
    table: String,
    chain: String,
    netns: Option<String>,
    comment: String,
    nft: String,
    conntrack: Option<String>,
    timeout: Duration,
    last_flush: Mutex<Option<ConntrackFlush>>,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
    ProviderError::new(kind, message)
}

/// A table, chain, namespace or plan name that is safe as a separate argument: no leading
/// `-` (an option to nft/ip), no `.`/`..` (a path under /run/netns), no whitespace or quotes.
fn valid_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl NftablesNat {
    /// A provider for the plan's `nftables` entry. `plan_name` goes into the comment
    /// `swing:<plan_name>` of the rule swing writes.
    pub fn new(config: &NftablesProvider, plan_name: &str) -> ProviderResult<Self> {
        if !matches!(config.family.as_str(), "ip" | "ip6" | "inet") {
            return Err(err(
                ErrorKind::Invalid,
                format!(
                    "nftables family `{}` cannot hold a DNAT rule; use ip, ip6 or inet",
                    config.family
                ),
            ));
        }
        for (what, v) in [("table", &config.table), ("chain", &config.chain)] {
            if !valid_name(v) {
                return Err(err(
                    ErrorKind::Invalid,
                    format!("nftables {what} name `{v}` is not a valid name"),
                ));
            }
        }
        if let Some(ns) = &config.netns
            && !valid_name(ns)
        {
            return Err(err(
                ErrorKind::Invalid,
                format!("network namespace name `{ns}` is not a valid name"),
            ));
        }
        if !valid_name(plan_name) {
            return Err(err(
                ErrorKind::Invalid,
                format!("plan name `{plan_name}` cannot go into an nft comment"),
            ));
        }
        Ok(NftablesNat {
            family: config.family.clone(),
            table: config.table.clone(),
            chain: config.chain.clone(),
            netns: config.netns.clone(),
            comment: format!("swing:{plan_name}"),
            nft: "nft".to_owned(),
            conntrack: Some("conntrack".to_owned()),
            timeout: Duration::from_secs(10),
            last_flush: Mutex::new(None),
        })
    }

    /// Whether to delete the old target's conntrack entries after a swing (default: on).
    pub fn with_conntrack_flush(mut self, on: bool) -> Self {
        self.conntrack = on.then(|| "conntrack".to_owned());
        self
    }

    /// Per-command timeout for `nft` and `conntrack` (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The comment swing writes on the rule it swings (`swing:<plan>`).
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// What the conntrack flush of the last swing did (`None` before any swing changed a rule).
    pub fn last_conntrack_flush(&self) -> Option<ConntrackFlush> {
        self.last_flush.lock().ok().and_then(|g| g.clone())
    }

    fn location(&self) -> String {
        let ns = self
            .netns
            .as_deref()
            .map(|n| format!(" in network namespace `{n}`"))
            .unwrap_or_default();
        format!("chain `{} {} {}`{ns}", self.family, self.table, self.chain)
    }

    /// Runs `program args…` (inside the namespace if configured) with `stdin`; returns stdout.
    async fn run(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<RunOutput, ProviderError> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            let launcher = if self.netns.is_some() { "ip" } else { program };
            if e.kind() == std::io::ErrorKind::NotFound {
                err(
                    ErrorKind::NotFound,
                    format!("`{launcher}` not found on this machine (install nftables/iproute2)"),
                )
            } else {
                err(ErrorKind::Failed, format!("cannot start `{launcher}`: {e}"))
            }
        })?;
        let input = stdin.map(<[u8]>::to_vec);
        let mut pipe = child.stdin.take();
        let work = async move {
            if let (Some(mut p), Some(bytes)) = (pipe.take(), input) {
                p.write_all(&bytes).await?;
                p.shutdown().await?;
            }
            child.wait_with_output().await
        };
        let out = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| {
                err(
                    ErrorKind::Transient,
                    format!(
                        "`{program}` did not finish within {:?} ({})",
                        self.timeout,
                        self.location()
                    ),
                )
            })?
            .map_err(|e| {
                err(
                    ErrorKind::Failed,
                    format!("running `{program}` failed: {e}"),
                )
            })?;
        Ok(RunOutput {
            success: out.status.success(),
            code: out.status.code(),
            stdout: out.stdout,
            stderr: truncate(&String::from_utf8_lossy(&out.stderr)),
        })
    }

    /// Maps a failed `nft` run to a typed error.
    fn nft_error(&self, what: &str, out: &RunOutput) -> ProviderError {
        let stderr = &out.stderr;
        let code = out
            .code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "signal".to_owned());
        if stderr.contains("Cannot open network namespace") {
            let ns = self.netns.as_deref().unwrap_or_default();
            err(
                ErrorKind::NotFound,
                format!("network namespace `{ns}` does not exist: {stderr}"),
            )
        } else if stderr.contains("Operation not permitted") {
            err(
                ErrorKind::Refused,
                format!("{what}: nft needs CAP_NET_ADMIN (run as root): {stderr}"),
            )
        } else if stderr.contains("No such file or directory") {
            err(
                ErrorKind::NotFound,
                format!("{what}: {} does not exist (nft: {stderr})", self.location()),
            )
        } else {
            err(
                ErrorKind::Failed,
                format!("{what}: nft exited with {code}: {stderr}"),
            )
        }
    }

    /// Lists the chain and returns every rule object in it.
    async fn list_rules(&self) -> ProviderResult<Vec<Map<String, Value>>> {
        let out = self
            .run(
                &self.nft,
                &[
                    "-j",
                    "list",
                    "chain",
                    &self.family,
                    &self.table,
                    &self.chain,
                ],
                None,
            )
            .await?;
        if !out.success {
            return Err(self.nft_error("reading the ruleset", &out));
        }
        let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            err(
                ErrorKind::Failed,
                format!(
                    "nft printed JSON swing cannot read ({e}) for {}",
                    self.location()
                ),
            )
        })?;
        let items = doc
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                err(
                    ErrorKind::Failed,
                    format!(
                        "nft JSON output has no `nftables` array for {}",
                        self.location()
                    ),
                )
            })?;
        Ok(items
            .iter()
            .filter_map(|i| i.get("rule").and_then(Value::as_object))
            .filter(|r| r.get("chain").and_then(Value::as_str) == Some(self.chain.as_str()))
            .cloned()
            .collect())
    }

    /// The rules of the chain that DNAT `public` (normally exactly one).
    pub async fn find_rules(&self, public: SocketAddr) -> ProviderResult<Vec<MatchedRule>> {
        let rules = self.list_rules().await?;
        let mut found = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if let Some(mut m) = match_rule(rule, public)? {
                m.index = index;
                found.push(m);
            }
        }
        Ok(found)
    }

    async fn find_one(&self, public: SocketAddr) -> ProviderResult<Option<MatchedRule>> {
        let mut found = self.find_rules(public).await?;
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => {
                let handles: Vec<String> = found.iter().map(|r| r.handle.to_string()).collect();
                Err(err(
                    ErrorKind::Conflict,
                    format!(
                        "{n} DNAT rules match {public} in {} (handles {}); swing needs exactly one",
                        self.location(),
                        handles.join(", ")
                    ),
                ))
            }
        }
    }

    /// The batch that swings `rule` to `to`: add the rewritten rule right after the old one,
    /// then delete the old one — one nft transaction.
    ///
    /// The position is given as `index` (after the rule at that 0-based position): nft
    /// releases such as 1.0.6 (Debian 12) ignore `handle` as a position in JSON `add rule` and
    /// append at the chain's end instead.
    pub fn swing_batch(&self, rule: &MatchedRule, to: SocketAddr) -> Value {
        let expr: Vec<Value> = rule.expr.iter().map(|e| retarget(e, to)).collect();
        json!({ "nftables": [
            { "add": { "rule": {
                "family": self.family, "table": self.table, "chain": self.chain,
                "index": rule.index, "expr": expr, "comment": self.comment,
            } } },
            { "delete": { "rule": {
                "family": self.family, "table": self.table, "chain": self.chain, "handle": rule.handle,
            } } },
        ] })
    }

    async fn flush_conntrack(&self, public: SocketAddr, old: SocketAddr) -> ConntrackFlush {
        let Some(program) = self.conntrack.clone() else {
            return ConntrackFlush::Disabled;
        };
        let family = if public.is_ipv4() { "ipv4" } else { "ipv6" };
        let (pub_ip, pub_port, old_ip, old_port) = (
            public.ip().to_string(),
            public.port().to_string(),
            old.ip().to_string(),
            old.port().to_string(),
        );
        let args = [
            "-D",
            "-f",
            family,
            "-p",
            "tcp",
            "--orig-dst",
            &pub_ip,
            "--orig-port-dst",
            &pub_port,
            "--reply-src",
            &old_ip,
            "--reply-port-src",
            &old_port,
        ];
        match self.run(&program, &args, None).await {
            Err(e) => ConntrackFlush::Failed(e.message),
            Ok(out) => match parse_deleted(&out.stderr) {
                Some(n) => ConntrackFlush::Deleted(n),
                None => ConntrackFlush::Failed(format!(
                    "conntrack exited with {:?}: {}",
                    out.code, out.stderr
                )),
            },
        }
    }
}

struct RunOutput {
    success: bool,
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

fn truncate(s: &str) -> String {
    let s = s.trim();
    if s.len() <= STDERR_MAX {
        return s.to_owned();
    }
    let mut end = STDERR_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (truncated)", &s[..end])
}

/// `conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.`
fn parse_deleted(stderr: &str) -> Option<u64> {
    let idx = stderr.find(" flow entries have been deleted")?;
    stderr[..idx]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Whether `left` is `payload <proto> <field>` with `proto` in `protos`.
fn is_payload(left: &Value, protos: &[&str], field: &str) -> bool {
    let Some(p) = left.get("payload") else {
        return false;
    };
    p.get("field").and_then(Value::as_str) == Some(field)
        && p.get("protocol")
            .and_then(Value::as_str)
            .is_some_and(|proto| protos.contains(&proto))
}

fn is_eq(m: &Value) -> bool {
    matches!(m.get("op").and_then(Value::as_str), None | Some("=="))
}

/// Checks one listed rule: `Some` if it DNATs `public`. A rule that matches `public` but whose
/// target swing cannot read (a map, a range) is an error, not silently skipped.
fn match_rule(
    rule: &Map<String, Value>,
    public: SocketAddr,
) -> ProviderResult<Option<MatchedRule>> {
    let Some(expr) = rule.get("expr").and_then(Value::as_array) else {
        return Ok(None);
    };
    let addr_protos: &[&str] = if public.is_ipv4() { &["ip"] } else { &["ip6"] };
    let mut addr_ok = false;
    let mut port_ok = false;
    let mut dnat: Option<&Value> = None;
    for e in expr {
        if let Some(m) = e.get("match") {
            let (Some(left), Some(right)) = (m.get("left"), m.get("right")) else {
                continue;
            };
            if !is_eq(m) {
                continue;
            }
            if is_payload(left, addr_protos, "daddr") {
                addr_ok |=
                    right.as_str().and_then(|s| s.parse::<IpAddr>().ok()) == Some(public.ip());
            } else if is_payload(left, &["tcp", "th"], "dport") {
                port_ok |= right.as_u64() == Some(u64::from(public.port()));
            }
        } else if let Some(d) = e.get("dnat") {
            dnat = Some(d);
        }
    }
    let Some(dnat) = dnat else { return Ok(None) };
    if !(addr_ok && port_ok) {
        return Ok(None);
    }
    let handle = rule.get("handle").and_then(Value::as_u64).ok_or_else(|| {
        err(
            ErrorKind::Failed,
            format!("nft listed the DNAT rule for {public} without a handle"),
        )
    })?;
    let addr = dnat
        .get("addr")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<IpAddr>().ok());
    let port = match dnat.get("port") {
        None => Some(public.port()),
        Some(p) => p.as_u64().and_then(|p| u16::try_from(p).ok()),
    };
    let (Some(addr), Some(port)) = (addr, port) else {
        return Err(err(
            ErrorKind::Invalid,
            format!(
                "the DNAT rule for {public} (handle {handle}) does not send traffic to one address:port \
                 (dnat {dnat}); swing can only swing a rule like `dnat to 10.0.0.11:443`"
            ),
        ));
    };
    Ok(Some(MatchedRule {
        handle,
        index: 0,
        target: SocketAddr::new(addr, port),
        comment: rule
            .get("comment")
            .and_then(Value::as_str)
            .map(str::to_owned),
        expr: expr.clone(),
    }))
}

/// The same expression with a `dnat` statement pointed at `to`; other expressions unchanged.
fn retarget(e: &Value, to: SocketAddr) -> Value {
    let Some(d) = e.get("dnat").and_then(Value::as_object) else {
        return e.clone();
    };
    let mut d = d.clone();
    d.insert("addr".to_owned(), Value::String(to.ip().to_string()));
    d.insert("port".to_owned(), Value::from(to.port()));
    if d.contains_key("family") {
        d.insert(
            "family".to_owned(),
            Value::String(if to.is_ipv4() { "ip" } else { "ip6" }.to_owned()),
        );
    }
    json!({ "dnat": d })
}

#[async_trait]
impl NatProvider for NftablesNat {
    async fn observe(&self, public: SocketAddr) -> ProviderResult<NatObservation> {
        let rule = self.find_one(public).await?;
        Ok(NatObservation {
            public,
            target: rule.as_ref().map(|r| r.target),
            comment: rule.and_then(|r| r.comment),
        })
    }

    async fn swing(
        &self,
        public: SocketAddr,
        from: SocketAddr,
        to: SocketAddr,
    ) -> ProviderResult<()> {
        let Some(rule) = self.find_one(public).await? else {
            return Err(err(
                ErrorKind::NotFound,
                format!("no DNAT rule matches {public} in {}", self.location()),
            ));
        };
        if rule.target == to {
            // Already swung (a resumed apply): nothing to write; the flush is idempotent.
            if from != to {
                let flush = self.flush_conntrack(public, from).await;
                if let Ok(mut g) = self.last_flush.lock() {
                    *g = Some(flush);
                }
            }
            return Ok(());
        }
        if rule.target != from {
            return Err(err(
                ErrorKind::Conflict,
                format!(
                    "the DNAT rule for {public} (handle {}) points at {}, not at {from} as planned; nothing changed",
                    rule.handle, rule.target
                ),
            ));
        }
        let batch = self.swing_batch(&rule, to);
        let body = serde_json::to_vec(&batch).map_err(|e| {
            err(
                ErrorKind::Failed,
                format!("cannot encode the nft batch: {e}"),
            )
        })?;
        let out = self.run(&self.nft, &["-j", "-f", "-"], Some(&body)).await?;
        if !out.success {
            let e = self.nft_error("swinging the DNAT rule", &out);
            if e.kind == ErrorKind::NotFound && out.stderr.contains("Could not process rule") {
                // The old rule (or its chain) vanished between read and write: someone else
                // changed it. The batch is one transaction, so nothing was applied.
                return Err(err(
                    ErrorKind::Conflict,
                    format!(
                        "the DNAT rule for {public} changed while swinging (handle {} is gone); the transaction \
                         was rejected, nothing changed (nft: {})",
                        rule.handle, out.stderr
                    ),
                ));
            }
            return Err(e);
        }
        // Verify by reading back, never trusting nft's exit status alone.
        let after = self.find_one(public).await?;
        match &after {
            Some(r) if r.target == to && r.comment.as_deref() == Some(self.comment.as_str()) => {}
            other => {
                let seen = other
                    .as_ref()
                    .map(|r| r.target.to_string())
                    .unwrap_or_else(|| "no rule".to_owned());
                return Err(err(
                    ErrorKind::Failed,
                    format!(
                        "nft accepted the swing of {public} but reading back shows {seen}, not {to}"
                    ),
                ));
            }
        }
        let flush = self.flush_conntrack(public, from).await;
        if let Ok(mut g) = self.last_flush.lock() {
            *g = Some(flush);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> NftablesNat {
        let cfg = NftablesProvider {
            table: "swing".into(),
            chain: "prerouting".into(),
            family: "ip".into(),
            netns: None,
        };
        NftablesNat::new(&cfg, "demo").unwrap()
    }

    fn rule(expr: Value) -> Map<String, Value> {
        json!({"family": "ip", "table": "swing", "chain": "prerouting", "handle": 7, "expr": expr})
            .as_object()
            .unwrap()
            .clone()
    }

    fn site_rule() -> Map<String, Value> {
        rule(json!([
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "203.0.113.10"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 443}},
            {"counter": {"packets": 3, "bytes": 180}},
            {"dnat": {"addr": "10.0.0.11", "port": 8443}}
        ]))
    }

    #[test]
    fn finds_site_rule_by_address_and_port() {
        let public: SocketAddr = "203.0.113.10:443".parse().unwrap();
        let m = match_rule(&site_rule(), public).unwrap().unwrap();
        assert_eq!(m.handle, 7);
        assert_eq!(m.target, "10.0.0.11:8443".parse().unwrap());
        assert_eq!(m.comment, None);
        assert!(
            match_rule(&site_rule(), "203.0.113.10:80".parse().unwrap())
                .unwrap()
                .is_none()
        );
        assert!(
            match_rule(&site_rule(), "203.0.113.11:443".parse().unwrap())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn dnat_without_port_keeps_public_port() {
        let r = rule(json!([
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "203.0.113.10"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": 443}},
            {"dnat": {"addr": "10.0.0.11"}}
        ]));
        let m = match_rule(&r, "203.0.113.10:443".parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(m.target, "10.0.0.11:443".parse().unwrap());
    }

    #[test]
    fn unreadable_dnat_target_is_an_error() {
        let r = rule(json!([
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "203.0.113.10"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 443}},
            {"dnat": {"addr": {"map": {"key": "x", "data": "y"}}}}
        ]));
        let e = match_rule(&r, "203.0.113.10:443".parse().unwrap()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
    }

    #[test]
    fn batch_is_add_after_old_then_delete_old_with_counter_kept() {
        let p = provider();
        let m = match_rule(&site_rule(), "203.0.113.10:443".parse().unwrap())
            .unwrap()
            .unwrap();
        let b = p.swing_batch(&m, "10.0.0.12:443".parse().unwrap());
        let cmds = b["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 2);
        let add = &cmds[0]["add"]["rule"];
        assert_eq!(add["index"], 0);
        assert!(add.get("handle").is_none());
        assert_eq!(add["comment"], "swing:demo");
        assert_eq!(
            add["expr"][2],
            json!({"counter": {"packets": 3, "bytes": 180}})
        );
        assert_eq!(
            add["expr"][3],
            json!({"dnat": {"addr": "10.0.0.12", "port": 443}})
        );
        assert_eq!(cmds[1]["delete"]["rule"]["handle"], 7);
        assert!(cmds[1]["delete"]["rule"].get("expr").is_none());
    }

    #[test]
    fn conntrack_count_is_parsed() {
        assert_eq!(
            parse_deleted("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted."),
            Some(3)
        );
        assert_eq!(
            parse_deleted("conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted."),
            Some(0)
        );
        assert_eq!(parse_deleted("conntrack: operation failed"), None);
    }

    #[test]
    fn rejects_bad_names() {
        let mut cfg = NftablesProvider {
            table: "swing".into(),
            chain: "pre routing".into(),
            family: "ip".into(),
            netns: None,
        };
        assert_eq!(
            NftablesNat::new(&cfg, "demo").unwrap_err().kind,
            ErrorKind::Invalid
        );
        for bad in ["-e", ".."] {
            cfg.chain = bad.into();
            assert!(NftablesNat::new(&cfg, "demo").is_err(), "{bad}");
            cfg.chain = "prerouting".into();
            cfg.netns = Some(bad.into());
            assert!(NftablesNat::new(&cfg, "demo").is_err(), "{bad}");
            cfg.netns = None;
        }
        cfg.family = "arp".into();
        assert_eq!(
            NftablesNat::new(&cfg, "demo").unwrap_err().kind,
            ErrorKind::Invalid
        );
    }

    #[test]
    fn nft_failures_map_to_kinds_with_stderr() {
        let p = provider();
        let out = |stderr: &str| RunOutput {
            success: false,
            code: Some(1),
            stdout: Vec::new(),
            stderr: stderr.to_owned(),
        };
        let e = p.nft_error(
            "x",
            &out("Error: Could not process rule: Operation not permitted"),
        );
        assert_eq!(e.kind, ErrorKind::Refused);
        let e = p.nft_error(
            "x",
            &out("Error: No such file or directory\nlist chain ip swing nope"),
        );
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.message.contains("ip swing prerouting"), "{e}");
        let e = p.nft_error("x", &out("Error: syntax error, unexpected junk"));
        assert_eq!(e.kind, ErrorKind::Failed);
        assert!(
            e.message.contains("unexpected junk") && e.message.contains("exited with 1"),
            "{e}"
        );
    }

    #[test]
    fn long_stderr_is_truncated() {
        let s = "é".repeat(STDERR_MAX);
        let t = truncate(&s);
        assert!(t.len() < s.len());
        assert!(t.ends_with("(truncated)"));
    }
}
