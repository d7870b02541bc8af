//! The `nftables` NAT provider: finds the site's DNAT rule for a public `address:port` in one
//! nftables chain and swings it to another appliance in ONE nft transaction.
//!
//! Owns: driving the `nft` binary with JSON (`nft -j list chain …` to read, `nft -e -j -f -` to
//! write a batch and get the committed rule echoed back, `nft -c -j -f -` to check one without
//! committing), through [`crate::gateway`] (optionally inside a network namespace), finding
//! the rule by what it matches (`<family> daddr <public ip>` and `tcp|th dport <public port>`,
//! plus a `dnat` statement), the swing as `add` (after the old rule, same expressions, new
//! `dnat` target, comment `swing:<plan>`) + `delete` (the old rule by handle) in one batch, and
//! the conntrack flush of the old target. A swing runs `nft` twice (read, write); verifying
//! the new target is the engine's observe after the act, the one read-back.
//!
//! Rules written by iptables: iptables-nft stores its DNAT as an `xt` target that nft lists
//! without the address. Such a rule for `public` is recognised — observe, swing and
//! check_swing refuse it (`Invalid`, naming table, chain and handle) instead of reporting "no
//! rule" — because a native nft rule in iptables' chain makes iptables unable to list it; the
//! `iptables` provider swings it.
//!
//! Why hand-written JSON and not the `nftables` crate's types: the site's rule usually predates
//! swing and may hold statements a typed model drops or rewrites (counters, logs, flags); swing
//! copies the rule's expressions verbatim and changes only the `dnat` target. The crate's
//! `Replace` command is also serialised wrongly by nftables 0.6, which is why the swing is
//! delete + add.
//!
//! Must not: touch any rule other than the one matching `public`, rewrite a rule iptables
//! wrote, retry a write, leave the chain without a rule for `public` at any observable point
//! (the batch is one transaction), or print to the terminal.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use swing_engine::provider::{
    ErrorKind, NatObservation, NatProvider, ProviderError, ProviderResult,
};
use swing_schema::plan::NftablesProvider;

pub use crate::gateway::ConntrackFlush;
use crate::gateway::{Gateway, ToolOutput, err, valid_name};

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

/// What one listed rule is, seen from `public`.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    /// A native nft rule that DNATs `public`: swing can rewrite it.
    Rule(MatchedRule),
    /// A rule for `public` written by iptables-nft (an `xt` DNAT target, whose address nft
    /// does not show): only iptables may rewrite it.
    Iptables { handle: u64 },
}

/// The nftables NAT provider for one `family table chain` (optionally in a network namespace).
#[derive(Debug)]
pub struct NftablesNat {
    family: String,
    table: String,
    chain: String,
    gw: Gateway,
    comment: String,
    nft: String,
    conntrack: Option<String>,
    last_flush: Mutex<Option<ConntrackFlush>>,
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
        let gw = Gateway::new(config.netns.clone())?;
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
            gw,
            comment: format!("swing:{plan_name}"),
            nft: "nft".to_owned(),
            conntrack: Some("conntrack".to_owned()),
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
        self.gw.timeout = timeout;
        self
    }

    /// The `nft` program to run (default `nft`, found on `PATH`), e.g. a wrapper that logs.
    pub fn with_nft(mut self, program: impl Into<String>) -> Self {
        self.nft = program.into();
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
        format!(
            "chain `{} {} {}`{}",
            self.family,
            self.table,
            self.chain,
            self.gw.in_netns()
        )
    }

    /// Maps a failed `nft` run to a typed error.
    fn nft_error(&self, what: &str, out: &ToolOutput) -> ProviderError {
        let stderr = &out.stderr;
        let code = out
            .code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "signal".to_owned());
        if stderr.contains("Operation not permitted") {
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
            .gw
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

    /// Why an iptables-written rule is not swung through nft, naming where it is.
    fn iptables_managed(&self, public: SocketAddr, handle: u64) -> ProviderError {
        err(
            ErrorKind::Invalid,
            format!(
                "the DNAT rule for {public} in {} (handle {handle}) was written by iptables \
                 (iptables-nft xt target); rewriting it through nft would make iptables unable to \
                 list the chain — use `type: iptables` with table `{}` and chain `{}` for this \
                 provider; nothing changed",
                self.location(),
                self.table,
                self.chain
            ),
        )
    }

    /// The rules of the chain that DNAT `public` (normally exactly one). A rule for `public`
    /// written by iptables is an error naming it: swing must not rewrite it through nft.
    pub async fn find_rules(&self, public: SocketAddr) -> ProviderResult<Vec<MatchedRule>> {
        let rules = self.list_rules().await?;
        let mut found = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            match match_rule(rule, public)? {
                None => {}
                Some(Found::Iptables { handle }) => {
                    return Err(self.iptables_managed(public, handle));
                }
                Some(Found::Rule(mut m)) => {
                    m.index = index;
                    found.push(m);
                }
            }
        }
        Ok(found)
    }

    async fn find_one(&self, public: SocketAddr) -> ProviderResult<Option<MatchedRule>> {
        let found = self.find_rules(public).await?;
        crate::gateway::exactly_one(found, public, &self.location(), "handles", |r| {
            r.handle.to_string()
        })
    }

    /// The one rule for `public`, or `NotFound` naming the chain.
    async fn the_rule(&self, public: SocketAddr) -> ProviderResult<MatchedRule> {
        crate::gateway::required(self.find_one(public).await?, public, &self.location())
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

    fn encode(batch: &Value) -> ProviderResult<Vec<u8>> {
        serde_json::to_vec(batch).map_err(|e| {
            err(
                ErrorKind::Failed,
                format!("cannot encode the nft batch: {e}"),
            )
        })
    }

    async fn flush_conntrack(&self, public: SocketAddr, old: SocketAddr) {
        let flush = self
            .gw
            .flush_conntrack(self.conntrack.as_deref(), public, old)
            .await;
        if let Ok(mut g) = self.last_flush.lock() {
            *g = Some(flush);
        }
    }
}

/// The handle nft echoed for the rule the batch added (`nft --echo`: the committed objects).
fn echoed_handle(stdout: &[u8]) -> Option<u64> {
    let doc: Value = serde_json::from_slice(stdout).ok()?;
    doc.get("nftables")?
        .as_array()?
        .iter()
        .find_map(|i| i.get("add")?.get("rule")?.get("handle")?.as_u64())
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

/// Whether `e` is iptables-nft's DNAT target (`{"xt": {"type": "target", "name": "DNAT"}}`).
fn is_xt_dnat(e: &Value) -> bool {
    e.get("xt").is_some_and(|x| {
        x.get("type").and_then(Value::as_str) == Some("target")
            && x.get("name").and_then(Value::as_str) == Some("DNAT")
    })
}

/// Checks one listed rule: `Some` if it DNATs `public`. A rule that matches `public` but whose
/// target swing cannot read (a map, a range) is an error, not silently skipped; one written by
/// iptables is [`Found::Iptables`].
fn match_rule(rule: &Map<String, Value>, public: SocketAddr) -> ProviderResult<Option<Found>> {
    let Some(expr) = rule.get("expr").and_then(Value::as_array) else {
        return Ok(None);
    };
    let addr_protos: &[&str] = if public.is_ipv4() { &["ip"] } else { &["ip6"] };
    let mut addr_ok = false;
    let mut port_ok = false;
    let mut dnat: Option<&Value> = None;
    let mut xt_dnat = false;
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
        } else if is_xt_dnat(e) {
            xt_dnat = true;
        }
    }
    if !(addr_ok && port_ok) || (dnat.is_none() && !xt_dnat) {
        return Ok(None);
    }
    let handle = rule.get("handle").and_then(Value::as_u64).ok_or_else(|| {
        err(
            ErrorKind::Failed,
            format!("nft listed the DNAT rule for {public} without a handle"),
        )
    })?;
    let Some(dnat) = dnat else {
        return Ok(Some(Found::Iptables { handle }));
    };
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
    Ok(Some(Found::Rule(MatchedRule {
        handle,
        index: 0,
        target: SocketAddr::new(addr, port),
        comment: rule
            .get("comment")
            .and_then(Value::as_str)
            .map(str::to_owned),
        expr: expr.clone(),
    })))
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

    /// One read (the rule and its handle), one write (`nft --echo`: the transaction's own
    /// report of the committed rule), then the conntrack flush: two `nft` runs. Whether the
    /// rule now points at `to` is verified by the engine's observe after the act — the one
    /// read-back, not repeated here.
    async fn swing(
        &self,
        public: SocketAddr,
        from: SocketAddr,
        to: SocketAddr,
    ) -> ProviderResult<()> {
        let rule = self.the_rule(public).await?;
        if rule.target == to {
            // Already swung (a resumed apply): nothing to write; the flush is idempotent.
            if from != to {
                self.flush_conntrack(public, from).await;
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
        let body = Self::encode(&self.swing_batch(&rule, to))?;
        let out = self
            .gw
            .run(&self.nft, &["-e", "-j", "-f", "-"], Some(&body))
            .await?;
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
        if echoed_handle(&out.stdout).is_none() {
            return Err(err(
                ErrorKind::Failed,
                format!(
                    "nft accepted the swing of {public} in {} but did not report the new rule; \
                     look at the chain before going on",
                    self.location()
                ),
            ));
        }
        self.flush_conntrack(public, from).await;
        Ok(())
    }

    /// The rule is found, is not iptables-managed, and the swing's own transaction passes
    /// `nft --check` (the kernel validates the batch, handle included, and commits nothing).
    async fn check_swing(&self, public: SocketAddr, to: SocketAddr) -> ProviderResult<()> {
        let rule = self.the_rule(public).await?;
        let body = Self::encode(&self.swing_batch(&rule, to))?;
        let out = self
            .gw
            .run(&self.nft, &["-c", "-j", "-f", "-"], Some(&body))
            .await?;
        if !out.success {
            return Err(self.nft_error("checking the swing of the DNAT rule", &out));
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

    /// The one native rule `r` is for `public`.
    fn matched(r: &Map<String, Value>, public: &str) -> Option<MatchedRule> {
        match match_rule(r, public.parse().unwrap()).unwrap() {
            Some(Found::Rule(m)) => Some(m),
            Some(Found::Iptables { .. }) => panic!("seen as iptables-managed"),
            None => None,
        }
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
        let m = matched(&site_rule(), "203.0.113.10:443").unwrap();
        assert_eq!(m.handle, 7);
        assert_eq!(m.target, "10.0.0.11:8443".parse().unwrap());
        assert_eq!(m.comment, None);
        assert!(matched(&site_rule(), "203.0.113.10:80").is_none());
        assert!(matched(&site_rule(), "203.0.113.11:443").is_none());
    }

    #[test]
    fn dnat_without_port_keeps_public_port() {
        let r = rule(json!([
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "203.0.113.10"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": 443}},
            {"dnat": {"addr": "10.0.0.11"}}
        ]));
        let m = matched(&r, "203.0.113.10:443").unwrap();
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
        let m = matched(&site_rule(), "203.0.113.10:443").unwrap();
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
    fn iptables_written_rule_is_recognised_not_missed() {
        // As iptables-nft writes `-d 203.0.113.10/32 -p tcp --dport 443 -j DNAT …`.
        let r = rule(json!([
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "203.0.113.10"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 443}},
            {"xt": {"type": "match", "name": "comment"}},
            {"counter": {"packets": 0, "bytes": 0}},
            {"xt": {"type": "target", "name": "DNAT"}}
        ]));
        let public = "203.0.113.10:443".parse().unwrap();
        assert_eq!(
            match_rule(&r, public).unwrap(),
            Some(Found::Iptables { handle: 7 })
        );
        // Another address or port: not the site's rule, whoever wrote it.
        assert_eq!(
            match_rule(&r, "203.0.113.10:80".parse().unwrap()).unwrap(),
            None
        );
        let e = provider().iptables_managed(public, 7);
        assert_eq!(e.kind, ErrorKind::Invalid);
        for part in [
            "ip swing prerouting",
            "handle 7",
            "iptables-nft xt target",
            "type: iptables",
        ] {
            assert!(e.message.contains(part), "{part}: {e}");
        }
    }

    #[test]
    fn echoed_handle_is_read_from_the_transaction_report() {
        let out = br#"{"nftables": [{"add": {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [], "handle": 5}}}, {"delete": {"rule": {"handle": 2}}}]}"#;
        assert_eq!(echoed_handle(out), Some(5));
        assert_eq!(echoed_handle(b""), None);
        assert_eq!(echoed_handle(br#"{"nftables": []}"#), None);
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
        let out = |stderr: &str| ToolOutput {
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
}
