//! Tolerant parsing of the appliance command API's XML (`/api/command`).
//!
//! Owns: turning a response body into typed data — [`parse_check_health`] for
//! `action=check_health`, [`parse_api_info`] for `action=get_api_info` and
//! [`parse_command_result`] for state-changing actions such as `set_failover_role`. All are
//! pure functions over `&str` (a fuzz target calls them), never panic, and accept what real
//! appliances send (docs/simulator.md lists the recorded shapes): either vendor namespace
//! (`bomgar.com` older, `beyondtrust.com` newer) with or without a prefix, any root element
//! (`<health_check>` recorded, `<check_health>` documented), unknown wrapper elements, any
//! element order, missing optional elements. An optional element that cannot be read (an
//! unknown `failover_role`, an unreadable `last_data_sync_time`) makes that one value unknown
//! and adds a warning naming it; only a missing or unreadable `<success>` fails the whole
//! answer. An `<error>` element anywhere becomes [`CommandXmlError::Api`].
//!
//! Must not: do IO, know HTTP, or echo the whole body into an error (bodies are untrusted and
//! may be large); messages carry at most a short, trimmed excerpt of element text.

use roxmltree::{Document, Node};
use swing_engine::provider::FailoverRole;

/// The vendor's command API namespace of newer releases (accepted, but not required).
pub const COMMAND_NAMESPACE: &str = "https://www.beyondtrust.com/namespaces/API/command";

/// The namespace of older releases, as recorded from a 19.1 appliance (accepted, not required).
pub const COMMAND_NAMESPACE_BOMGAR: &str = "http://www.bomgar.com/namespaces/API/command";

/// Longest element text copied into a message.
const MAX_TEXT: usize = 300;

/// Why a command API body could not be turned into a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandXmlError {
    /// The appliance answered with an `<error>` element.
    #[error("the appliance refused the command: {0}")]
    Api(String),
    /// The body is not well-formed XML.
    #[error("the command API answer is not well-formed XML: {0}")]
    NotXml(String),
    /// Well-formed, but something required is missing or has an unknown value.
    #[error("unexpected command API answer: {0}")]
    Malformed(String),
}

/// One appliance as `check_health` reports it. Missing optional elements stay `None`/empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplianceHealth {
    /// `<appliance id="…">`: 32 lower-case hex digits on recorded appliances.
    pub id: Option<String>,
    pub hostname: Option<String>,
    /// Dotted numeric version with any build suffix removed (`25.1.3`).
    pub version: Option<String>,
    /// The `<version>` text exactly as sent (trimmed), build included.
    pub version_raw: Option<String>,
    /// `<success>` 1 or 0.
    pub success: bool,
    pub error_message: Option<String>,
    /// `None` when the element is absent (no failover configured);
    /// [`FailoverRole::Unknown`] when its text is not a role swing knows.
    pub failover_role: Option<FailoverRole>,
    pub shared_ips: Vec<String>,
    /// `<last_data_sync_time ts="UNIX">`, or the ISO-8601 text converted.
    pub last_sync_unix: Option<i64>,
    pub last_sync_status: Option<String>,
    /// Optional elements that could not be read, each naming the element and the value made
    /// unknown.
    pub warnings: Vec<String>,
}

/// The whole `check_health` answer (one entry per appliance reported).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthReport {
    pub appliances: Vec<ApplianceHealth>,
}

impl HealthReport {
    /// The entry an appliance reports about itself: the only one, or the first.
    pub fn local(&self) -> Option<&ApplianceHealth> {
        self.appliances.first()
    }
}

/// Parses the body of `action=check_health`.
pub fn parse_check_health(xml: &str) -> Result<HealthReport, CommandXmlError> {
    let doc = parse_doc(xml)?;
    check_error(&doc)?;
    let root = doc.root_element();
    let appliance_nodes: Vec<Node> = root
        .descendants()
        .filter(|n| is_elem(n, "appliance"))
        .collect();

    let mut appliances = Vec::new();
    if appliance_nodes.is_empty() {
        // No <appliance> element at all: accept a bare record if it at least says success.
        if find_in(&[root], "success").is_none() {
            return Err(CommandXmlError::Malformed(
                "check_health answer has neither <appliance> nor <success>".into(),
            ));
        }
        appliances.push(read_record(None, &[root])?);
    } else {
        for node in &appliance_nodes {
            let scope = record_scope(*node);
            appliances.push(read_record(Some(*node), &scope)?);
        }
    }
    Ok(HealthReport { appliances })
}

/// Parses the body of a state-changing command (e.g. `set_failover_role`): returns the
/// success text the appliance sent (possibly empty), or the `<error>` as [`CommandXmlError::Api`].
pub fn parse_command_result(xml: &str) -> Result<String, CommandXmlError> {
    let doc = parse_doc(xml)?;
    check_error(&doc)?;
    let root = doc.root_element();
    for name in ["success", "message", "result"] {
        if let Some(n) = find_in(&[root], name) {
            let text = text_of(n);
            // `<success>0</success>` with no error element is still a failure.
            if text == "0" {
                return Err(CommandXmlError::Api(
                    "the appliance reported success=0".into(),
                ));
            }
            return Ok(text);
        }
    }
    Ok(clip(&all_text(root)))
}

fn parse_doc(xml: &str) -> Result<Document<'_>, CommandXmlError> {
    // roxmltree refuses DTDs by default, so entity expansion attacks are rejected here.
    Document::parse(xml).map_err(|e| CommandXmlError::NotXml(clip(&e.to_string())))
}

fn check_error(doc: &Document<'_>) -> Result<(), CommandXmlError> {
    if let Some(err) = doc
        .root_element()
        .descendants()
        .find(|n| is_elem(n, "error"))
    {
        let text = all_text(err);
        let text = if text.is_empty() {
            "(no message)".to_owned()
        } else {
            clip(&text)
        };
        return Err(CommandXmlError::Api(text));
    }
    Ok(())
}

/// Element whose local name is `name`, namespace and prefix ignored.
fn is_elem(n: &Node<'_, '_>, name: &str) -> bool {
    n.is_element() && n.tag_name().name().eq_ignore_ascii_case(name)
}

/// The nodes holding one appliance's fields. A container form (`<appliance id=".."><version>..`)
/// is its own scope; the flat form (`<appliance id="..">host</appliance><version>..` as
/// siblings) takes the siblings — all of them when the parent holds one appliance, else the
/// siblings up to the next `<appliance>`.
fn record_scope<'a, 'i>(appliance: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
    if appliance.children().any(|c| c.is_element()) {
        return vec![appliance];
    }
    let Some(parent) = appliance.parent_element() else {
        return vec![appliance];
    };
    let siblings_with_appliance = parent
        .children()
        .filter(|c| is_elem(c, "appliance"))
        .count();
    if siblings_with_appliance <= 1 {
        return parent
            .children()
            .filter(|c| c.is_element() && *c != appliance)
            .collect();
    }
    appliance
        .next_siblings()
        .skip(1)
        .filter(|c| c.is_element())
        .take_while(|c| !is_elem(c, "appliance"))
        .collect()
}

fn read_record(
    appliance: Option<Node<'_, '_>>,
    scope: &[Node<'_, '_>],
) -> Result<ApplianceHealth, CommandXmlError> {
    let mut h = ApplianceHealth::default();
    if let Some(a) = appliance {
        h.id = a
            .attribute("id")
            .map(|s| clip(s.trim()))
            .filter(|s| !s.is_empty());
        let own = text_of(a);
        h.hostname = if own.is_empty() { None } else { Some(own) };
    }
    if h.hostname.is_none() {
        h.hostname = find_in(scope, "hostname")
            .map(text_of)
            .filter(|s| !s.is_empty());
    }
    if let Some(v) = find_in(scope, "version") {
        let raw = text_of(v);
        if !raw.is_empty() {
            h.version = strip_build(&raw);
            h.version_raw = Some(raw);
        }
    }
    h.success = match find_in(scope, "success").map(text_of) {
        Some(s) => parse_bool(&s).ok_or_else(|| {
            CommandXmlError::Malformed(format!("<success> is neither 1 nor 0: {}", clip(&s)))
        })?,
        None => {
            return Err(CommandXmlError::Malformed(
                "check_health answer has no <success>".into(),
            ));
        }
    };
    h.error_message = find_in(scope, "error_message")
        .map(text_of)
        .filter(|s| !s.is_empty());
    if let Some(r) = find_in(scope, "failover_role") {
        let text = text_of(r);
        h.failover_role = Some(match text.to_ascii_lowercase().as_str() {
            "" | "none" => FailoverRole::None,
            "primary" => FailoverRole::Primary,
            "backup" => FailoverRole::Backup,
            other => {
                h.warnings.push(format!(
                    "<failover_role> `{}` is not a role swing knows: the role is unknown",
                    clip(other)
                ));
                FailoverRole::Unknown
            }
        });
    }
    if let Some(ips) = find_in(scope, "enabled_shared_ips") {
        h.shared_ips = ips
            .descendants()
            .filter(|n| is_elem(n, "ip"))
            .map(text_of)
            .filter(|s| !s.is_empty())
            .collect();
    }
    if let Some(t) = find_in(scope, "last_data_sync_time") {
        let ts = t.attribute("ts").map(str::trim).filter(|s| !s.is_empty());
        let text = text_of(t);
        h.last_sync_unix = match (ts.map(str::parse::<i64>), iso8601_unix(&text)) {
            (Some(Ok(unix)), _) => Some(unix),
            (_, Some(unix)) => Some(unix),
            (None, None) if text.is_empty() => None,
            _ => {
                h.warnings.push(format!(
                    "<last_data_sync_time> `{}`{} is not a time swing can read: the last sync time is unknown",
                    clip(&text),
                    ts.map(|t| format!(" (ts `{}`)", clip(t))).unwrap_or_default()
                ));
                None
            }
        };
    }
    h.last_sync_status = find_in(scope, "last_data_sync_status")
        .map(text_of)
        .filter(|s| !s.is_empty());
    Ok(h)
}

/// An ISO-8601 date-time as UNIX seconds: `Z`, `+00:00` or `+0000` offsets, with or without
/// fractional seconds, `T` or a space between date and time.
pub fn iso8601_unix(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp());
    }
    ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"]
        .iter()
        .find_map(|f| chrono::DateTime::parse_from_str(t, f).ok())
        .map(|d| d.timestamp())
}

/// What `get_api_info` reports: the API version and the API account's permissions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiInfo {
    /// `<api_version>`, e.g. `1.19.0`.
    pub api_version: Option<String>,
    pub company_name: Option<String>,
    /// `<timestamp>` (UNIX seconds, the appliance's clock).
    pub timestamp: Option<i64>,
    /// Permission name (`perm_command`, `perm_backup`, …) → its value (`full_access`, `1`, …).
    pub permissions: std::collections::BTreeMap<String, String>,
}

impl ApiInfo {
    /// The value of one permission, `None` when the answer does not list it.
    pub fn permission(&self, name: &str) -> Option<&str> {
        self.permissions.get(name).map(String::as_str)
    }
}

/// Parses the body of `action=get_api_info`. Permissions come as
/// `<permission name="perm_command">full_access</permission>` (the vendor's documented and
/// recorded form) or as `<perm_command>full_access</perm_command>` elements; both are read.
pub fn parse_api_info(xml: &str) -> Result<ApiInfo, CommandXmlError> {
    let doc = parse_doc(xml)?;
    check_error(&doc)?;
    let root = doc.root_element();
    let scope = [root];
    let text = |name: &str| find_in(&scope, name).map(text_of).filter(|s| !s.is_empty());
    let mut info = ApiInfo {
        api_version: text("api_version"),
        company_name: text("company_name"),
        timestamp: text("timestamp").and_then(|t| t.parse().ok()),
        ..ApiInfo::default()
    };
    if info.api_version.is_none() {
        return Err(CommandXmlError::Malformed(
            "get_api_info answer has no <api_version>".into(),
        ));
    }
    if let Some(perms) = find_in(&scope, "permissions") {
        for p in perms.children().filter(Node::is_element) {
            let name = if p.tag_name().name().eq_ignore_ascii_case("permission") {
                p.attribute("name")
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_owned()
            } else {
                p.tag_name().name().to_owned()
            };
            if !name.is_empty() {
                info.permissions.insert(clip(&name), text_of(p));
            }
        }
    }
    Ok(info)
}

/// First element named `name` among the scope nodes and their descendants, in document order.
fn find_in<'a, 'i>(scope: &[Node<'a, 'i>], name: &str) -> Option<Node<'a, 'i>> {
    scope
        .iter()
        .flat_map(|n| n.descendants())
        .find(|n| is_elem(n, name))
}

/// Direct text of an element (not of its children), trimmed and clipped.
fn text_of(n: Node<'_, '_>) -> String {
    let s: String = n
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect();
    clip(s.trim())
}

/// All text below an element, whitespace-collapsed.
fn all_text(n: Node<'_, '_>) -> String {
    let s: Vec<&str> = n
        .descendants()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .flat_map(str::split_whitespace)
        .collect();
    s.join(" ")
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// `25.1.3 (build 4711)`, `25.1.3-4711`, `25.1.3+b4711`, `25.1.3 build 4711` → `25.1.3`.
/// Returns `None` when the text does not start with a digit.
pub fn strip_build(raw: &str) -> Option<String> {
    let v: String = raw
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v = v.trim_end_matches('.');
    if v.is_empty() {
        None
    } else {
        Some(v.to_owned())
    }
}

/// At most [`MAX_TEXT`] characters, on a char boundary.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = COMMAND_NAMESPACE;

    #[test]
    fn flat_form_with_default_namespace() {
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
            <check_health xmlns="{NS}">
              <appliance id="6f1c0a7e-1111-2222-3333-444455556666">pra-a.example.com</appliance>
              <version>25.1.3 (build 4711)</version>
              <success>1</success>
              <failover_role>primary</failover_role>
              <enabled_shared_ips><ip>10.0.0.10</ip><ip>10.0.0.9</ip></enabled_shared_ips>
              <last_data_sync_time ts="1764000000">2025-11-24T16:00:00+00:00</last_data_sync_time>
              <last_data_sync_status>Success</last_data_sync_status>
            </check_health>"#
        );
        let r = parse_check_health(&xml).unwrap();
        assert_eq!(r.appliances.len(), 1);
        let a = r.local().unwrap();
        assert_eq!(
            a.id.as_deref(),
            Some("6f1c0a7e-1111-2222-3333-444455556666")
        );
        assert_eq!(a.hostname.as_deref(), Some("pra-a.example.com"));
        assert_eq!(a.version.as_deref(), Some("25.1.3"));
        assert_eq!(a.version_raw.as_deref(), Some("25.1.3 (build 4711)"));
        assert!(a.success);
        assert_eq!(a.failover_role, Some(FailoverRole::Primary));
        assert_eq!(a.shared_ips, vec!["10.0.0.10", "10.0.0.9"]);
        assert_eq!(a.last_sync_unix, Some(1_764_000_000));
        assert_eq!(a.last_sync_status.as_deref(), Some("Success"));
        assert_eq!(a.error_message, None);
    }

    #[test]
    fn prefixed_namespace_any_order_unknown_wrappers() {
        let xml = format!(
            r#"<ns:result xmlns:ns="{NS}"><ns:data><ns:extra>ignored</ns:extra>
              <ns:last_data_sync_status>Failed</ns:last_data_sync_status>
              <ns:success>0</ns:success>
              <ns:error_message>Disk is nearly full</ns:error_message>
              <ns:failover_role>backup</ns:failover_role>
              <ns:version>24.3.1</ns:version>
              <ns:appliance id="b-guid">pra-b</ns:appliance>
            </ns:data></ns:result>"#
        );
        let a = parse_check_health(&xml).unwrap().appliances.remove(0);
        assert_eq!(a.id.as_deref(), Some("b-guid"));
        assert_eq!(a.hostname.as_deref(), Some("pra-b"));
        assert_eq!(a.version.as_deref(), Some("24.3.1"));
        assert!(!a.success);
        assert_eq!(a.error_message.as_deref(), Some("Disk is nearly full"));
        assert_eq!(a.failover_role, Some(FailoverRole::Backup));
        assert_eq!(a.last_sync_status.as_deref(), Some("Failed"));
        assert!(a.shared_ips.is_empty());
        assert_eq!(a.last_sync_unix, None);
    }

    #[test]
    fn container_form_without_namespace_and_missing_optionals() {
        let xml = r#"<appliances>
            <appliance id="x1"><hostname>one</hostname><success>true</success><version>25.1.3</version></appliance>
            <appliance id="x2"><hostname>two</hostname><success>0</success>
              <last_data_sync_time>2026-11-26T10:00:00Z</last_data_sync_time></appliance>
          </appliances>"#;
        let r = parse_check_health(xml).unwrap();
        assert_eq!(r.appliances.len(), 2);
        assert_eq!(r.appliances[0].hostname.as_deref(), Some("one"));
        assert!(r.appliances[0].success);
        assert_eq!(r.appliances[0].failover_role, None);
        assert_eq!(r.appliances[1].id.as_deref(), Some("x2"));
        assert!(!r.appliances[1].success);
        assert_eq!(r.appliances[1].version, None);
        assert_eq!(r.appliances[1].last_sync_unix, Some(1_795_687_200));
    }

    #[test]
    fn flat_form_with_two_appliances_splits_at_each_appliance() {
        let xml = r#"<check_health>
            <appliance id="a">A</appliance><success>1</success><version>25.1.3</version>
            <appliance id="b">B</appliance><version>24.3.1</version><success>0</success>
          </check_health>"#;
        let r = parse_check_health(xml).unwrap();
        assert_eq!(r.appliances.len(), 2);
        assert_eq!(r.appliances[0].version.as_deref(), Some("25.1.3"));
        assert!(r.appliances[0].success);
        assert_eq!(r.appliances[1].version.as_deref(), Some("24.3.1"));
        assert!(!r.appliances[1].success);
    }

    #[test]
    fn error_element_is_typed() {
        let xml = format!(r#"<error xmlns="{NS}">Access denied for this API account</error>"#);
        assert_eq!(
            parse_check_health(&xml),
            Err(CommandXmlError::Api(
                "Access denied for this API account".into()
            ))
        );
        let nested = r#"<response><error><message>Invalid action</message></error></response>"#;
        assert_eq!(
            parse_command_result(nested),
            Err(CommandXmlError::Api("Invalid action".into()))
        );
    }

    #[test]
    fn rejects_garbage_and_dtd_and_missing_success() {
        assert!(matches!(
            parse_check_health(""),
            Err(CommandXmlError::NotXml(_))
        ));
        assert!(matches!(
            parse_check_health("<a><b></a>"),
            Err(CommandXmlError::NotXml(_))
        ));
        assert!(matches!(
            parse_check_health("{\"json\":1}"),
            Err(CommandXmlError::NotXml(_))
        ));
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><x>&b;</x>"#;
        assert!(matches!(
            parse_check_health(bomb),
            Err(CommandXmlError::NotXml(_))
        ));
        assert!(matches!(
            parse_check_health("<check_health><version>1</version></check_health>"),
            Err(CommandXmlError::Malformed(_))
        ));
        assert!(matches!(
            parse_check_health("<c><appliance id='a'>h</appliance><success>maybe</success></c>"),
            Err(CommandXmlError::Malformed(_))
        ));
    }

    /// The `check_health` answer as recorded from a Remote Support 19.1.8 appliance: root
    /// `<health_check>` in the older namespace, tabs and blank lines as sent, a 32-hex id, the
    /// appliance's own host name, a version with build and commit, no `ts` on the sync time.
    const RECORDED_HEALTH: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<health_check xmlns=\"http://www.bomgar.com/namespaces/API/command\">\n\t<appliance id=\"9c5e1fd3b0a84f0e8d2f6a1b7c3e4d5f\">ip-10-156-64-136</appliance>\n\n\t<version>19.1.8 (37380-749b17ca1d3e5f7a9b0c2d4e6f8a1b3c5d7e7a35)</version>\n\t<success>1</success>\n\t<failover_role>primary</failover_role>\n\t<enabled_shared_ips>\n\t\t<ip>10.156.64.200</ip>\n\t</enabled_shared_ips>\n\t<last_data_sync_time>2019-08-07T14:31:05+0000</last_data_sync_time>\n\t<last_data_sync_status>Success</last_data_sync_status>\n</health_check>\n";

    #[test]
    fn the_recorded_answer_of_a_19_1_appliance_is_read_whole() {
        let r = parse_check_health(RECORDED_HEALTH).unwrap();
        assert_eq!(r.appliances.len(), 1);
        let a = r.local().unwrap();
        assert_eq!(a.id.as_deref(), Some("9c5e1fd3b0a84f0e8d2f6a1b7c3e4d5f"));
        assert_eq!(a.hostname.as_deref(), Some("ip-10-156-64-136"));
        assert_eq!(a.version.as_deref(), Some("19.1.8"));
        assert_eq!(
            a.version_raw.as_deref(),
            Some("19.1.8 (37380-749b17ca1d3e5f7a9b0c2d4e6f8a1b3c5d7e7a35)")
        );
        assert!(a.success);
        assert_eq!(a.failover_role, Some(FailoverRole::Primary));
        assert_eq!(a.shared_ips, vec!["10.156.64.200"]);
        assert_eq!(a.last_sync_unix, Some(1_565_188_265));
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    }

    #[test]
    fn either_namespace_and_any_root_name() {
        for ns in [COMMAND_NAMESPACE, COMMAND_NAMESPACE_BOMGAR] {
            for root in ["health_check", "check_health", "response"] {
                let xml = format!(
                    "<{root} xmlns=\"{ns}\"><appliance id=\"ab\">h</appliance><success>1</success><version>25.1.3 (build 7)</version></{root}>"
                );
                let a = parse_check_health(&xml).unwrap().appliances.remove(0);
                assert_eq!(a.version.as_deref(), Some("25.1.3"), "{root} in {ns}");
                assert_eq!(a.hostname.as_deref(), Some("h"));
            }
        }
    }

    #[test]
    fn sync_time_in_every_iso_8601_offset_form_with_or_without_ts() {
        let at = |inner: &str| {
            let xml = format!("<health_check><success>1</success>{inner}</health_check>");
            let a = parse_check_health(&xml).unwrap().appliances.remove(0);
            (a.last_sync_unix, a.warnings)
        };
        let want = Some(1_795_687_200);
        for text in [
            "2026-11-26T10:00:00Z",
            "2026-11-26T10:00:00+00:00",
            "2026-11-26T10:00:00+0000",
            "2026-11-26T10:00:00.250Z",
            "2026-11-26T10:00:00.250+0000",
            "2026-11-26T11:00:00+01:00",
            "2026-11-26T11:00:00+0100",
            "2026-11-26 10:00:00+00:00",
        ] {
            let (unix, warnings) = at(&format!(
                "<last_data_sync_time>{text}</last_data_sync_time>"
            ));
            assert_eq!(unix, want, "{text}");
            assert!(warnings.is_empty(), "{text}: {warnings:?}");
        }
        // The ts attribute wins when it reads; the text stands in when it does not.
        let (unix, _) = at("<last_data_sync_time ts=\"1795687200\">garbage</last_data_sync_time>");
        assert_eq!(unix, want);
        let (unix, warnings) =
            at("<last_data_sync_time ts=\"x\">2026-11-26T10:00:00+0000</last_data_sync_time>");
        assert_eq!((unix, warnings.len()), (want, 0));
    }

    #[test]
    fn an_unreadable_optional_element_makes_that_value_unknown_with_a_warning() {
        let xml = "<health_check><appliance id=\"ab\">h</appliance><success>1</success>\
            <version>25.1.3</version><failover_role>standby-ish</failover_role>\
            <last_data_sync_time ts=\"soon\">yesterday</last_data_sync_time>\
            <last_data_sync_status>Sort of synced</last_data_sync_status></health_check>";
        let a = parse_check_health(xml).unwrap().appliances.remove(0);
        assert_eq!(a.version.as_deref(), Some("25.1.3"));
        assert!(a.success);
        assert_eq!(a.failover_role, Some(FailoverRole::Unknown));
        assert_eq!(a.last_sync_unix, None);
        // An unknown status text is kept as sent: its vocabulary is not documented.
        assert_eq!(a.last_sync_status.as_deref(), Some("Sort of synced"));
        assert_eq!(a.warnings.len(), 2, "{:?}", a.warnings);
        assert!(
            a.warnings[0].contains("<failover_role> `standby-ish`"),
            "{:?}",
            a.warnings
        );
        assert!(
            a.warnings[1].contains("<last_data_sync_time> `yesterday` (ts `soon`)"),
            "{:?}",
            a.warnings
        );
    }

    #[test]
    fn api_info_permissions_in_the_recorded_and_the_element_form() {
        let recorded = format!(
            "<api_information xmlns=\"{COMMAND_NAMESPACE_BOMGAR}\">\n\t<api_version>1.19.0</api_version>\n\t<company_name>Example Corp</company_name>\n\t<timestamp>1565188265</timestamp>\n\t<permissions>\n\t\t<permission name=\"perm_command\">full_access</permission>\n\t\t<permission name=\"perm_backup\">1</permission>\n\t\t<permission name=\"perm_reporting_session\">1</permission>\n\t\t<permission name=\"perm_real_time_state\">0</permission>\n\t</permissions>\n</api_information>"
        );
        let i = parse_api_info(&recorded).unwrap();
        assert_eq!(i.api_version.as_deref(), Some("1.19.0"));
        assert_eq!(i.company_name.as_deref(), Some("Example Corp"));
        assert_eq!(i.timestamp, Some(1_565_188_265));
        assert_eq!(i.permission("perm_command"), Some("full_access"));
        assert_eq!(i.permission("perm_backup"), Some("1"));
        assert_eq!(i.permission("perm_real_time_state"), Some("0"));
        assert_eq!(i.permission("perm_scim"), None);
        let elements = "<api_information><api_version>1.19.0</api_version><permissions>\
            <perm_command>read_only</perm_command><perm_backup>0</perm_backup></permissions></api_information>";
        let i = parse_api_info(elements).unwrap();
        assert_eq!(i.permission("perm_command"), Some("read_only"));
        assert_eq!(i.permission("perm_backup"), Some("0"));
        assert!(matches!(
            parse_api_info("<api_information/>"),
            Err(CommandXmlError::Malformed(_))
        ));
        assert!(matches!(
            parse_api_info("<error>Access denied</error>"),
            Err(CommandXmlError::Api(_))
        ));
    }

    #[test]
    fn bare_record_without_appliance_element() {
        let r =
            parse_check_health("<check_health><success>1</success><failover_role/></check_health>")
                .unwrap();
        assert_eq!(r.appliances.len(), 1);
        assert!(r.appliances[0].success);
        assert_eq!(r.appliances[0].failover_role, Some(FailoverRole::None));
        assert_eq!(r.appliances[0].id, None);
    }

    #[test]
    fn long_texts_are_clipped() {
        let long = "x".repeat(5000);
        let err = parse_check_health(&format!("<error>{long}</error>")).unwrap_err();
        assert!(err.to_string().chars().count() < 400);
    }

    #[test]
    fn command_results() {
        let ok = format!(
            r#"<set_failover_role xmlns="{NS}"><success>Successfully changed role.</success></set_failover_role>"#
        );
        assert_eq!(
            parse_command_result(&ok).unwrap(),
            "Successfully changed role."
        );
        let sync = "<r><message>Successfully started data sync. Role change will occur upon successful completion.</message></r>";
        assert!(
            parse_command_result(sync)
                .unwrap()
                .starts_with("Successfully started data sync")
        );
        assert!(matches!(
            parse_command_result("<r><success>0</success></r>"),
            Err(CommandXmlError::Api(_))
        ));
        assert_eq!(
            parse_command_result("<r> done  now </r>").unwrap(),
            "done now"
        );
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_or_a_value_never_a_panic() {
        let xml = format!(
            r#"<ns:check_health xmlns:ns="{NS}"><ns:appliance id="g">h</ns:appliance><ns:version>25.1.3 (build 1)</ns:version><ns:success>1</ns:success><ns:failover_role>primary</ns:failover_role><ns:enabled_shared_ips><ns:ip>10.0.0.10</ns:ip></ns:enabled_shared_ips><ns:last_data_sync_time ts="1">x</ns:last_data_sync_time><ns:last_data_sync_status>ok</ns:last_data_sync_status></ns:check_health>"#
        );
        assert!(parse_check_health(&xml).is_ok());
        let mut ok = 0;
        for i in 0..xml.len() {
            if parse_check_health(&xml[..i]).is_ok() {
                ok += 1;
            }
            let mut bytes = xml.clone().into_bytes();
            bytes[i] = b'<';
            if let Ok(s) = std::str::from_utf8(&bytes) {
                let _ = parse_check_health(s);
                let _ = parse_command_result(s);
            }
        }
        // A truncated document is never well-formed, so none of them parses.
        assert_eq!(ok, 0);
    }

    #[test]
    fn build_suffixes() {
        assert_eq!(
            strip_build("25.1.3 (build 4711)").as_deref(),
            Some("25.1.3")
        );
        assert_eq!(strip_build("25.1.3-4711").as_deref(), Some("25.1.3"));
        assert_eq!(strip_build(" 7.2.1+b9 ").as_deref(), Some("7.2.1"));
        assert_eq!(strip_build("25.1.").as_deref(), Some("25.1"));
        assert_eq!(strip_build("build 7"), None);
    }
}
