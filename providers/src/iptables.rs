//! The `iptables` NAT provider: finds the site's DNAT rule for a public `address:port` in one
//! iptables chain and swings it to another appliance in ONE `iptables-restore` transaction —
//! for gateways whose rules are written with iptables (legacy or the nf_tables backend), which
//! the `nftables` provider must not rewrite.
//!
//! Owns: reading the table with `iptables-save -t TABLE` (`ip6tables-save` for an IPv6 public
//! address), optionally inside a network namespace; finding the rule by what it matches
//! (`-A CHAIN … -d PUBLIC/32 -p tcp … --dport PORT … -j DNAT --to-destination IP[:PORT]`, any
//! other options kept as written, `-m comment --comment …` read); the swing as one
//! `iptables-restore --noflush` batch that deletes the old rule by its exact specification
//! (`-D`, which fails — and with it the whole batch — if the rule changed since it was read:
//! compare-and-swap in the transaction) and inserts the rewritten one at the same position
//! (`-I CHAIN N`, comment `swing:<plan>`); read-back verification; the conntrack flush of the
//! old target (shared with nftables, [`crate::gateway`]); and `check_swing` as
//! `iptables-restore --test --noflush` of the same batch.
//!
//! Must not: touch any rule other than the one matching `public`, retry a write, flush a table
//! or chain (`--noflush` always), build a shell command, or print to the terminal.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use swing_engine::provider::{
    ErrorKind, NatObservation, NatProvider, ProviderError, ProviderResult,
};
use swing_schema::plan::IptablesProvider;

pub use crate::gateway::ConntrackFlush;
use crate::gateway::{Gateway, ToolOutput, err, valid_name};

/// One token of a saved rule: its text as written (quotes and escapes kept) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    raw: String,
    value: String,
}

/// The site's rule as `iptables-save` printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedRule {
    /// 1-based position in the chain (the `N` of `-I CHAIN N`).
    pub number: usize,
    /// Where `--to-destination` sends traffic.
    pub target: SocketAddr,
    /// The rule's `--comment`, if any.
    pub comment: Option<String>,
    /// Everything after `-A CHAIN `, exactly as printed (what `-D CHAIN …` must repeat).
    pub spec: String,
    tokens: Vec<Token>,
    /// Index in `tokens` of the `--to-destination` value and of the `--comment` value.
    to_at: usize,
    comment_at: Option<usize>,
    jump_at: usize,
}

/// The iptables NAT provider for one `table chain` (optionally in a network namespace).
#[derive(Debug)]
pub struct IptablesNat {
    table: String,
    chain: String,
    gw: Gateway,
    comment: String,
    conntrack: Option<String>,
    last_flush: Mutex<Option<ConntrackFlush>>,
}

/// Splits a saved rule into tokens the way `iptables-restore` reads them: whitespace
/// separates, `"…"` quotes (with `\"` and `\\` inside). `None` for an unterminated quote.
fn tokenize(line: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut value = String::new();
        let mut end = start;
        let mut quoted = false;
        while let Some(&(i, c)) = chars.peek() {
            if !quoted && c.is_whitespace() {
                break;
            }
            chars.next();
            end = i + c.len_utf8();
            match c {
                '"' => quoted = !quoted,
                '\\' if quoted => {
                    let (i, n) = chars.next()?;
                    end = i + n.len_utf8();
                    value.push(n);
                }
                _ => value.push(c),
            }
        }
        if quoted {
            return None;
        }
        out.push(Token {
            raw: line[start..end].to_owned(),
            value,
        });
    }
    Some(out)
}

/// `10.0.0.11:443`, `10.0.0.11`, `[fd00::2]:443`, `fd00::2` → the target (`default_port` when
/// none is given); ranges and anything else are `None`.
fn parse_to_destination(s: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        && (s.starts_with('[') == s.ends_with(']'))
    {
        return Some(SocketAddr::new(ip, default_port));
    }
    None
}

/// `10.0.0.11:443` or `[fd00::2]:443`: how `--to-destination` is written.
fn to_destination(to: SocketAddr) -> String {
    to.to_string()
}

/// `-d` value `203.0.113.10/32` (or without a prefix) → the single address; `None` for a net.
fn single_address(s: &str) -> Option<IpAddr> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let ip: IpAddr = ip.parse().ok()?;
    let full = if ip.is_ipv4() { "32" } else { "128" };
    match len {
        None => Some(ip),
        Some(l) if l == full => Some(ip),
        Some(_) => None,
    }
}

/// Checks one saved rule (the tokens after `-A CHAIN`): `Some` if it DNATs `public`.
fn match_rule(number: usize, spec: &str, public: SocketAddr) -> Result<Option<SavedRule>, String> {
    let tokens =
        tokenize(spec).ok_or_else(|| format!("rule {number} has an unterminated quote"))?;
    let (mut addr_ok, mut tcp, mut port_ok, mut dnat) = (false, false, false, false);
    let (mut to_at, mut comment_at, mut jump_at) = (Vec::new(), None, None);
    let mut negate = false;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].value.as_str();
        let next = tokens.get(i + 1).map(|t| t.value.as_str());
        let neg = std::mem::take(&mut negate);
        match t {
            "!" => {
                negate = true;
                i += 1;
                continue;
            }
            "-d" | "--destination" | "--dst" => {
                addr_ok |= !neg && next.and_then(single_address) == Some(public.ip());
            }
            "-p" | "--protocol" => tcp |= !neg && next == Some("tcp"),
            "--dport" | "--destination-port" => {
                port_ok |= !neg && next.and_then(|p| p.parse::<u16>().ok()) == Some(public.port());
            }
            "-j" | "--jump" => {
                dnat |= next == Some("DNAT");
                jump_at = Some(i);
            }
            "--to-destination" => to_at.push(i + 1),
            "--comment" => comment_at = Some(i + 1),
            _ => {
                i += 1;
                continue;
            }
        }
        // Every option above takes one value.
        i += 2;
    }
    if !(addr_ok && tcp && port_ok && dnat) {
        return Ok(None);
    }
    let (Some(jump_at), [to_at]) = (jump_at, to_at.as_slice()) else {
        return Err(format!(
            "rule {number} (`{spec}`) does not have exactly one `--to-destination`"
        ));
    };
    let to_value = tokens.get(*to_at).map(|t| t.value.as_str()).unwrap_or("");
    let Some(target) = parse_to_destination(to_value, public.port()) else {
        return Err(format!(
            "rule {number} (`{spec}`) does not send traffic to one address:port (--to-destination \
             {to_value}); swing can only swing a rule like `-j DNAT --to-destination 10.0.0.11:443`"
        ));
    };
    Ok(Some(SavedRule {
        number,
        target,
        comment: comment_at
            .and_then(|c| tokens.get(c))
            .map(|t| t.value.clone()),
        spec: spec.to_owned(),
        to_at: *to_at,
        comment_at,
        jump_at,
        tokens,
    }))
}

/// The rules of `chain` in one table section of `iptables-save`, with their 1-based numbers.
/// `Err(None)`: the chain is not declared (it does not exist).
fn chain_rules<'a>(saved: &'a str, chain: &str) -> Option<Vec<(usize, &'a str)>> {
    let declared = format!(":{chain} ");
    let append = format!("-A {chain} ");
    let mut found = false;
    let mut rules = Vec::new();
    for line in saved.lines() {
        if line.starts_with(&declared) {
            found = true;
        } else if let Some(spec) = line.strip_prefix(&append) {
            rules.push((rules.len() + 1, spec));
        }
    }
    found.then_some(rules)
}

impl IptablesNat {
    /// A provider for the plan's `iptables` entry. `plan_name` goes into the comment
    /// `swing:<plan_name>` of the rule swing writes.
    pub fn new(config: &IptablesProvider, plan_name: &str) -> ProviderResult<Self> {
        for (what, v) in [("table", &config.table), ("chain", &config.chain)] {
            if !valid_name(v) {
                return Err(err(
                    ErrorKind::Invalid,
                    format!("iptables {what} name `{v}` is not a valid name"),
                ));
            }
        }
        let gw = Gateway::new(config.netns.clone())?;
        if !valid_name(plan_name) {
            return Err(err(
                ErrorKind::Invalid,
                format!("plan name `{plan_name}` cannot go into an iptables comment"),
            ));
        }
        Ok(IptablesNat {
            table: config.table.clone(),
            chain: config.chain.clone(),
            gw,
            comment: format!("swing:{plan_name}"),
            conntrack: Some("conntrack".to_owned()),
            last_flush: Mutex::new(None),
        })
    }

    /// Whether to delete the old target's conntrack entries after a swing (default: on).
    pub fn with_conntrack_flush(mut self, on: bool) -> Self {
        self.conntrack = on.then(|| "conntrack".to_owned());
        self
    }

    /// Per-command timeout for the iptables tools and `conntrack` (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.gw.timeout = timeout;
        self
    }

    /// What the conntrack flush of the last swing did (`None` before any swing changed a rule).
    pub fn last_conntrack_flush(&self) -> Option<ConntrackFlush> {
        self.last_flush.lock().ok().and_then(|g| g.clone())
    }

    fn location(&self) -> String {
        format!(
            "iptables chain `{}` of table `{}`{}",
            self.chain,
            self.table,
            self.gw.in_netns()
        )
    }

    fn tools(public: SocketAddr) -> (&'static str, &'static str) {
        if public.is_ipv4() {
            ("iptables-save", "iptables-restore")
        } else {
            ("ip6tables-save", "ip6tables-restore")
        }
    }

    /// Maps a failed iptables tool run to a typed error.
    fn tool_error(&self, program: &str, what: &str, out: &ToolOutput) -> ProviderError {
        let stderr = &out.stderr;
        let code = out
            .code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "signal".to_owned());
        if stderr.contains("Permission denied") || stderr.contains("Operation not permitted") {
            err(
                ErrorKind::Refused,
                format!("{what}: {program} needs CAP_NET_ADMIN (run as root): {stderr}"),
            )
        } else if stderr.contains("does not exist") || stderr.contains("No chain/target/match") {
            err(
                ErrorKind::NotFound,
                format!(
                    "{what}: {} does not exist ({program}: {stderr})",
                    self.location()
                ),
            )
        } else {
            err(
                ErrorKind::Failed,
                format!("{what}: {program} exited with {code}: {stderr}"),
            )
        }
    }

    /// `iptables-save -t TABLE` → the rules of the chain that DNAT `public`.
    pub async fn find_rules(&self, public: SocketAddr) -> ProviderResult<Vec<SavedRule>> {
        let (save, _) = Self::tools(public);
        let out = self.gw.run(save, &["-t", &self.table], None).await?;
        if !out.success {
            return Err(self.tool_error(save, "reading the table", &out));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("is incompatible, use 'nft' tool") {
            return Err(err(
                ErrorKind::Invalid,
                format!(
                    "{save} cannot list table `{}`{}: it holds rules written with nft, which \
                     iptables cannot read — use `type: nftables` for this provider",
                    self.table,
                    self.gw.in_netns()
                ),
            ));
        }
        let Some(rules) = chain_rules(&text, &self.chain) else {
            return Err(err(
                ErrorKind::NotFound,
                format!(
                    "{} does not exist ({save} lists no such chain)",
                    self.location()
                ),
            ));
        };
        let mut found = Vec::new();
        for (number, spec) in rules {
            match match_rule(number, spec, public) {
                Ok(Some(r)) => found.push(r),
                Ok(None) => {}
                Err(why) => {
                    return Err(err(
                        ErrorKind::Invalid,
                        format!("the DNAT rule for {public} in {}: {why}", self.location()),
                    ));
                }
            }
        }
        Ok(found)
    }

    async fn find_one(&self, public: SocketAddr) -> ProviderResult<Option<SavedRule>> {
        let found = self.find_rules(public).await?;
        crate::gateway::exactly_one(found, public, &self.location(), "rules", |r| {
            r.number.to_string()
        })
    }

    async fn the_rule(&self, public: SocketAddr) -> ProviderResult<SavedRule> {
        crate::gateway::required(self.find_one(public).await?, public, &self.location())
    }

    /// The `iptables-restore --noflush` batch that swings `rule` to `to`: delete the old rule
    /// by its exact specification, insert the rewritten one at its position — one transaction.
    pub fn swing_batch(&self, rule: &SavedRule, to: SocketAddr) -> String {
        let mut parts: Vec<String> = rule.tokens.iter().map(|t| t.raw.clone()).collect();
        parts[rule.to_at] = to_destination(to);
        match rule.comment_at {
            Some(c) => parts[c] = self.comment.clone(),
            None => {
                let mark = ["-m", "comment", "--comment", self.comment.as_str()];
                for (k, p) in mark.iter().enumerate() {
                    parts.insert(rule.jump_at + k, (*p).to_owned());
                }
            }
        }
        format!(
            "*{table}\n-D {chain} {old}\n-I {chain} {n} {new}\nCOMMIT\n",
            table = self.table,
            chain = self.chain,
            old = rule.spec,
            n = rule.number,
            new = parts.join(" "),
        )
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

#[async_trait]
impl NatProvider for IptablesNat {
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
                    "the DNAT rule for {public} (rule {} of {}) points at {}, not at {from} as planned; \
                     nothing changed",
                    rule.number,
                    self.location(),
                    rule.target
                ),
            ));
        }
        let (_, restore) = Self::tools(public);
        let batch = self.swing_batch(&rule, to);
        let out = self
            .gw
            .run(restore, &["--noflush"], Some(batch.as_bytes()))
            .await?;
        if !out.success {
            if out.stderr.contains("does a matching rule exist") {
                // `-D` found no rule with the specification read a moment ago: someone else
                // changed it. The batch is one transaction, so nothing was applied.
                return Err(err(
                    ErrorKind::Conflict,
                    format!(
                        "the DNAT rule for {public} in {} changed while swinging; the transaction was \
                         rejected, nothing changed ({restore}: {})",
                        self.location(),
                        out.stderr
                    ),
                ));
            }
            return Err(self.tool_error(restore, "swinging the DNAT rule", &out));
        }
        // Verify by reading back, never trusting the exit status alone.
        match self.find_one(public).await? {
            Some(r) if r.target == to && r.comment.as_deref() == Some(self.comment.as_str()) => {}
            other => {
                let seen = other
                    .map(|r| r.target.to_string())
                    .unwrap_or_else(|| "no rule".to_owned());
                return Err(err(
                    ErrorKind::Failed,
                    format!(
                        "{restore} accepted the swing of {public} but reading back {} shows {seen}, \
                         not {to}",
                        self.location()
                    ),
                ));
            }
        }
        self.flush_conntrack(public, from).await;
        Ok(())
    }

    /// The rule is found (so the chain exists and `-D` would match it) and the swing's batch
    /// passes `iptables-restore --test --noflush`, which parses and builds it but commits
    /// nothing. (`--test` itself does not look for the `-D` rule; the read before does.)
    async fn check_swing(&self, public: SocketAddr, to: SocketAddr) -> ProviderResult<()> {
        let rule = self.the_rule(public).await?;
        let (_, restore) = Self::tools(public);
        let batch = self.swing_batch(&rule, to);
        let out = self
            .gw
            .run(restore, &["--test", "--noflush"], Some(batch.as_bytes()))
            .await?;
        if !out.success {
            return Err(self.tool_error(restore, "checking the swing of the DNAT rule", &out));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> IptablesNat {
        let cfg = IptablesProvider {
            table: "nat".into(),
            chain: "PREROUTING".into(),
            netns: None,
        };
        IptablesNat::new(&cfg, "demo").unwrap()
    }

    const SAVED: &str = "# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 203.0.113.10/32 -p tcp -m tcp --dport 22 -j DNAT --to-destination 10.0.0.12:22
-A PREROUTING -d 203.0.113.10/32 -p tcp -m tcp --dport 443 -m comment --comment \"site \\\"web\\\" rule\" -j DNAT --to-destination 10.0.0.11:8443
-A PREROUTING ! -d 203.0.113.11/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.0.0.12:443
-A OUTPUT -d 203.0.113.10/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.0.0.13:443
COMMIT
";

    fn site(public: &str) -> Vec<SavedRule> {
        let public: SocketAddr = public.parse().unwrap();
        chain_rules(SAVED, "PREROUTING")
            .unwrap()
            .into_iter()
            .filter_map(|(n, spec)| match_rule(n, spec, public).unwrap())
            .collect()
    }

    #[test]
    fn finds_the_site_rule_by_address_and_port_in_its_chain_only() {
        let found = site("203.0.113.10:443");
        assert_eq!(found.len(), 1, "{found:?}");
        let r = &found[0];
        assert_eq!(r.number, 2);
        assert_eq!(r.target, "10.0.0.11:8443".parse().unwrap());
        assert_eq!(r.comment.as_deref(), Some("site \"web\" rule"));
        assert!(site("203.0.113.10:80").is_empty());
        // A negated destination is not a match for that address.
        assert!(site("203.0.113.11:443").is_empty());
        assert_eq!(chain_rules(SAVED, "NOSUCH"), None);
    }

    #[test]
    fn batch_deletes_the_exact_rule_and_inserts_the_new_one_at_its_place() {
        let p = provider();
        let r = &site("203.0.113.10:443")[0];
        let b = p.swing_batch(r, "10.0.0.12:443".parse().unwrap());
        assert_eq!(
            b,
            "*nat\n\
             -D PREROUTING -d 203.0.113.10/32 -p tcp -m tcp --dport 443 -m comment --comment \"site \\\"web\\\" rule\" -j DNAT --to-destination 10.0.0.11:8443\n\
             -I PREROUTING 2 -d 203.0.113.10/32 -p tcp -m tcp --dport 443 -m comment --comment swing:demo -j DNAT --to-destination 10.0.0.12:443\n\
             COMMIT\n"
        );
        // Without a comment one is added before the jump.
        let r = &site("203.0.113.10:22")[0];
        let b = p.swing_batch(r, "10.0.0.11:22".parse().unwrap());
        assert!(
            b.contains("-I PREROUTING 1 -d 203.0.113.10/32 -p tcp -m tcp --dport 22 -m comment --comment swing:demo -j DNAT --to-destination 10.0.0.11:22\n"),
            "{b}"
        );
    }

    #[test]
    fn targets_swing_cannot_read_are_errors_not_skipped() {
        let public: SocketAddr = "203.0.113.10:443".parse().unwrap();
        for spec in [
            "-d 203.0.113.10/32 -p tcp --dport 443 -j DNAT --to-destination 10.0.0.11-10.0.0.12",
            "-d 203.0.113.10/32 -p tcp --dport 443 -j DNAT --to-destination 10.0.0.11:80-90",
            "-d 203.0.113.10/32 -p tcp --dport 443 -j DNAT",
        ] {
            assert!(match_rule(1, spec, public).is_err(), "{spec}");
        }
        assert!(match_rule(1, "-d 203.0.113.10/32 --comment \"open", public).is_err());
        let r = match_rule(
            1,
            "-d 203.0.113.10 -p tcp --dport 443 -j DNAT --to-destination 10.0.0.11",
            public,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.target, "10.0.0.11:443".parse().unwrap());
        // A network is not the public address.
        assert!(
            match_rule(
                1,
                "-d 203.0.113.0/24 -p tcp --dport 443 -j DNAT --to-destination 10.0.0.11",
                public
            )
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn ipv6_targets_are_read_and_written_bracketed() {
        let public: SocketAddr = "[fd00::10]:443".parse().unwrap();
        let r = match_rule(
            1,
            "-d fd00::10/128 -p tcp -m tcp --dport 443 -j DNAT --to-destination [fd00:2::2]:8080",
            public,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.target, "[fd00:2::2]:8080".parse().unwrap());
        let b = provider().swing_batch(&r, "[fd00:3::2]:8080".parse().unwrap());
        assert!(b.contains("--to-destination [fd00:3::2]:8080\n"), "{b}");
        assert_eq!(IptablesNat::tools(public).0, "ip6tables-save");
    }

    #[test]
    fn tokens_keep_their_written_form() {
        let t = tokenize(r#"-m comment --comment "a \"b\" c" -j X"#).unwrap();
        let raw: Vec<&str> = t.iter().map(|t| t.raw.as_str()).collect();
        assert_eq!(
            raw,
            ["-m", "comment", "--comment", r#""a \"b\" c""#, "-j", "X"]
        );
        assert_eq!(t[3].value, "a \"b\" c");
        assert_eq!(tokenize("\"open"), None);
        assert_eq!(tokenize("   "), Some(vec![]));
    }

    #[test]
    fn rejects_bad_names() {
        for (table, chain, netns) in [
            ("nat", "PRE ROUTING", None),
            ("-t", "PREROUTING", None),
            ("nat", "PREROUTING", Some("..")),
        ] {
            let cfg = IptablesProvider {
                table: table.into(),
                chain: chain.into(),
                netns: netns.map(str::to_owned),
            };
            assert_eq!(
                IptablesNat::new(&cfg, "demo").unwrap_err().kind,
                ErrorKind::Invalid
            );
        }
    }
}
