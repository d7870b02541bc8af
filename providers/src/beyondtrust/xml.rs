//! Tolerant parsing of the appliance command API's XML (`/api/command`).
//!
//! Owns: turning a response body into typed data — [`parse_check_health`] for
//! `action=check_health` and [`parse_command_result`] for state-changing actions such as
//! `set_failover_role`. Both are pure functions over `&str` (a fuzz target calls them), never
//! panic, and accept what real appliances send: the vendor namespace with or without a prefix,
//! unknown wrapper elements, any element order, and missing optional elements. An `<error>`
//! element anywhere becomes [`CommandXmlError::Api`].
//!
//! Must not: do IO, know HTTP, or echo the whole body into an error (bodies are untrusted and
//! may be large); messages carry at most a short, trimmed excerpt of element text.

use roxmltree::{Document, Node};
use swing_engine::provider::FailoverRole;

/// The vendor's command API namespace (accepted, but not required).
pub const COMMAND_NAMESPACE: &str = "https://www.beyondtrust.com/namespaces/API/command";

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
    /// `<appliance id="GUID">`.
    pub id: Option<String>,
    pub hostname: Option<String>,
    /// Dotted numeric version with any build suffix removed (`25.1.3`).
    pub version: Option<String>,
    /// The `<version>` text exactly as sent (trimmed), build included.
    pub version_raw: Option<String>,
    /// `<success>` 1 or 0.
    pub success: bool,
    pub error_message: Option<String>,
    /// `None` when the element is absent (no failover configured).
    pub failover_role: Option<FailoverRole>,
    pub shared_ips: Vec<String>,
    /// `<last_data_sync_time ts="UNIX">`, or the ISO-8601 text converted.
    pub last_sync_unix: Option<i64>,
    pub last_sync_status: Option<String>,
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
                return Err(CommandXmlError::Malformed(format!(
                    "unknown <failover_role>: {}",
                    clip(other)
                )));
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
        h.last_sync_unix = match t.attribute("ts").map(str::trim) {
            Some(ts) if !ts.is_empty() => Some(ts.parse::<i64>().map_err(|_| {
                CommandXmlError::Malformed(format!("bad last_data_sync_time ts: {}", clip(ts)))
            })?),
            _ => {
                let text = text_of(t);
                if text.is_empty() {
                    None
                } else {
                    Some(
                        chrono::DateTime::parse_from_rfc3339(&text)
                            .map_err(|_| {
                                CommandXmlError::Malformed(format!(
                                    "bad last_data_sync_time: {}",
                                    clip(&text)
                                ))
                            })?
                            .timestamp(),
                    )
                }
            }
        };
    }
    h.last_sync_status = find_in(scope, "last_data_sync_status")
        .map(text_of)
        .filter(|s| !s.is_empty());
    Ok(h)
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
        assert!(matches!(
            parse_check_health("<c><success>1</success><failover_role>boss</failover_role></c>"),
            Err(CommandXmlError::Malformed(_))
        ));
        assert!(matches!(
            parse_check_health("<c><success>1</success><last_data_sync_time ts='x'/></c>"),
            Err(CommandXmlError::Malformed(_))
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
