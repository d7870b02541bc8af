//! Plan diagnostics: one problem found in a plan file, located to the byte.
//!
//! Owns [`PlanDiagnostic`] (a `miette::Diagnostic` for people, `serde::Serialize` for
//! `--format json`), its stable [`codes`], and the byte-offset → line:column arithmetic.
//! Must not: decide exit codes, print anything, or hold a secret value — messages are written
//! by `load` and `validate`, which point at a literal secret's span but never quote it.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;

/// A byte range in the plan text (`start..end`, `end` exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    pub const fn len(self) -> usize {
        self.end.saturating_sub(self.start)
    }
    pub const fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl From<Span> for SourceSpan {
    fn from(s: Span) -> Self {
        SourceSpan::new(s.start.into(), s.len())
    }
}

/// How bad a diagnostic is. Only errors make a plan invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A label under a span of the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// Byte range in the source.
    #[serde(skip)]
    pub span: Span,
    /// 1-based line of the span start.
    pub line: usize,
    /// 1-based column (in characters) of the span start.
    pub column: usize,
    /// Text shown under the span.
    pub text: String,
    /// The label the diagnostic is about (the others give context).
    pub primary: bool,
}

/// One problem in one plan file.
#[derive(Clone, Serialize)]
pub struct PlanDiagnostic {
    /// The file (or origin) the diagnostic is about.
    pub file: String,
    /// 1-based line of the primary label (0 when the problem has no location).
    pub line: usize,
    /// 1-based column of the primary label (0 when the problem has no location).
    pub column: usize,
    /// Stable, kebab-case problem class, e.g. `unknown-key`; see [`codes`].
    pub code: &'static str,
    pub severity: Severity,
    /// One sentence saying what is wrong.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Spans with their labels; the first primary label gives `line`/`column`.
    pub labels: Vec<Label>,
    #[serde(skip)]
    source: Option<Arc<NamedSource<String>>>,
}

impl fmt::Debug for PlanDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanDiagnostic")
            .field("file", &self.file)
            .field("line", &self.line)
            .field("column", &self.column)
            .field("code", &self.code)
            .field("severity", &self.severity)
            .field("message", &self.message)
            .field("help", &self.help)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PlanDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlanDiagnostic {}

impl miette::Diagnostic for PlanDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("swing::{}", self.code)))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Warning => miette::Severity::Warning,
            Severity::Error => miette::Severity::Error,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source
            .as_ref()
            .map(|s| &**s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() || self.source.is_none() {
            return None;
        }
        Some(Box::new(self.labels.iter().map(|l| {
            let text = if l.text.is_empty() {
                None
            } else {
                Some(l.text.clone())
            };
            if l.primary {
                LabeledSpan::new_primary_with_span(text, l.span)
            } else {
                LabeledSpan::new_with_span(text, l.span)
            }
        })))
    }
}

impl PlanDiagnostic {
    /// A plain-text rendering without colours or box drawing: `file:line:col: severity[code]:
    /// message`, then one `  --> line:col: label` per label and `  help: …`. Stable, for logs and
    /// snapshots.
    pub fn to_plain(&self) -> String {
        let mut out = format!(
            "{}:{}:{}: {}[{}]: {}\n",
            self.file, self.line, self.column, self.severity, self.code, self.message
        );
        for l in &self.labels {
            let line_text = self
                .source
                .as_ref()
                .and_then(|s| source_line(s.inner(), l.span.start))
                .unwrap_or_default();
            out.push_str(&format!("  --> {}:{}\n", l.line, l.column));
            out.push_str(&format!("   | {line_text}\n"));
            let width = l.span.len().max(1);
            let under_len = line_text
                .chars()
                .skip(l.column.saturating_sub(1))
                .collect::<String>()
                .len()
                .min(width)
                .max(1);
            let under_chars = self
                .source
                .as_ref()
                .map(|s| {
                    let src = s.inner();
                    let end = (l.span.start + under_len).min(src.len());
                    src.get(l.span.start..end).map_or(1, |t| t.chars().count())
                })
                .unwrap_or(1)
                .max(1);
            out.push_str(&format!(
                "   | {}{} {}\n",
                " ".repeat(l.column.saturating_sub(1)),
                if l.primary { "^" } else { "-" }.repeat(under_chars),
                l.text
            ));
        }
        if let Some(h) = &self.help {
            out.push_str(&format!("  help: {h}\n"));
        }
        out
    }

    /// The whole source this diagnostic refers to, if any.
    pub fn source(&self) -> Option<&Arc<NamedSource<String>>> {
        self.source.as_ref()
    }
}

/// The text of the line holding `offset` (without its newline).
fn source_line(src: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    let start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = src[offset..].find('\n').map_or(src.len(), |i| offset + i);
    Some(src[start..end].trim_end_matches('\r').to_owned())
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// 1-based line and 1-based character column of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    let before = &src[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Builds diagnostics for one source.
#[derive(Clone)]
pub struct DiagnosticBuilder {
    origin: String,
    source: Arc<NamedSource<String>>,
}

impl DiagnosticBuilder {
    pub fn new(origin: &str, source: Arc<NamedSource<String>>) -> Self {
        DiagnosticBuilder {
            origin: origin.to_owned(),
            source,
        }
    }

    fn text(&self) -> &str {
        self.source.inner()
    }

    /// A diagnostic with a primary label at `span`.
    pub fn at(
        &self,
        severity: Severity,
        code: &'static str,
        span: Span,
        label: impl Into<String>,
        message: impl Into<String>,
    ) -> PlanDiagnostic {
        let mut d = PlanDiagnostic {
            file: self.origin.clone(),
            line: 0,
            column: 0,
            code,
            severity,
            message: message.into(),
            help: None,
            labels: Vec::new(),
            source: Some(self.source.clone()),
        };
        self.push_label(&mut d, span, label.into(), true);
        d
    }

    /// A diagnostic about the whole file (no span to point at).
    pub fn whole_file(
        &self,
        severity: Severity,
        code: &'static str,
        message: impl Into<String>,
    ) -> PlanDiagnostic {
        PlanDiagnostic {
            file: self.origin.clone(),
            line: 0,
            column: 0,
            code,
            severity,
            message: message.into(),
            help: None,
            labels: Vec::new(),
            source: Some(self.source.clone()),
        }
    }

    /// Adds a secondary label.
    pub fn also(
        &self,
        mut d: PlanDiagnostic,
        span: Span,
        label: impl Into<String>,
    ) -> PlanDiagnostic {
        self.push_label(&mut d, span, label.into(), false);
        d
    }

    fn push_label(&self, d: &mut PlanDiagnostic, span: Span, text: String, primary: bool) {
        let len = self.text().len();
        let start = floor_char_boundary(self.text(), span.start.min(len));
        let end = floor_char_boundary(self.text(), span.end.clamp(start, len));
        let span = Span::new(start, end);
        let (line, column) = line_col(self.text(), start);
        if primary && d.line == 0 {
            d.line = line;
            d.column = column;
        }
        d.labels.push(Label {
            span,
            line,
            column,
            text,
            primary,
        });
    }
}

/// Adds a help line.
pub trait WithHelp {
    fn help(self, help: impl Into<String>) -> Self;
}

impl WithHelp for PlanDiagnostic {
    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The stable problem classes (`code` of a diagnostic). Tests and users match on these.
pub mod codes {
    // reading the file
    pub const IO: &str = "io";
    pub const TOO_LARGE: &str = "file-too-large";
    pub const NOT_UTF8: &str = "not-utf8";
    pub const EMPTY: &str = "empty-file";
    pub const SYNTAX: &str = "yaml-syntax";
    pub const DUPLICATE_KEY: &str = "duplicate-key";
    pub const TOO_DEEP: &str = "nesting-too-deep";
    pub const ALIAS_LIMIT: &str = "alias-expansion-limit";
    pub const MULTIPLE_DOCUMENTS: &str = "multiple-documents";
    pub const COMPLEX_KEY: &str = "complex-key";
    pub const UNSUPPORTED_TAG: &str = "unsupported-tag";
    pub const NOT_A_MAPPING: &str = "plan-not-a-mapping";
    // shape (JSON schema)
    pub const UNKNOWN_KEY: &str = "unknown-key";
    pub const MISSING_KEY: &str = "missing-key";
    pub const WRONG_TYPE: &str = "wrong-type";
    pub const BAD_VALUE: &str = "invalid-value";
    pub const UNSUPPORTED_VERSION: &str = "unsupported-format-version";
    pub const BAD_NAME: &str = "invalid-name";
    pub const BAD_VERSION: &str = "invalid-target-version";
    pub const BAD_DURATION: &str = "invalid-duration";
    pub const BAD_TIMESTAMP: &str = "invalid-timestamp";
    pub const BAD_HOSTNAME: &str = "invalid-hostname";
    pub const OUT_OF_RANGE: &str = "out-of-range";
    pub const LITERAL_SECRET: &str = "literal-secret";
    pub const UNKNOWN_VARIANT: &str = "unknown-variant";
    pub const APPLIANCE_COUNT: &str = "appliance-count";
    // meaning (semantic checks)
    pub const PRIMARY_EQUALS_BACKUP: &str = "primary-equals-backup";
    pub const UNKNOWN_APPLIANCE: &str = "unknown-appliance";
    pub const UNKNOWN_PROVIDER: &str = "unknown-provider";
    pub const FAILOVER_NEEDS_TWO: &str = "failover-needs-two-appliances";
    pub const TWO_WITHOUT_PAIRING: &str = "two-appliances-without-failover-or-migration";
    pub const FAILOVER_AND_MIGRATION: &str = "failover-and-migration";
    pub const PROVIDER_WRONG_TYPE: &str = "provider-wrong-type";
    pub const FINAL_PRIMARY_ON_SYNC: &str = "final-primary-on-synchronous";
    pub const WINDOW_END_BEFORE_START: &str = "window-end-not-after-start";
    pub const WINDOWS_OVERLAP: &str = "windows-overlap";
    pub const DUPLICATE_WINDOW: &str = "duplicate-window-name";
    pub const DUPLICATE_ADDRESS: &str = "duplicate-address";
    pub const MANUAL_WITHOUT_WINDOWS: &str = "manual-without-windows";
    pub const ASYNC_ONE_WINDOW: &str = "asynchronous-with-one-window";
    pub const OPERATOR_COMMAND: &str = "operator-command";
    pub const TARGET_NOT_NEWER: &str = "target-not-newer";
    pub const BAD_ENDPOINT: &str = "invalid-endpoint";
    pub const BAD_NOTIFY_URL: &str = "invalid-notify-url";
    pub const NOTIFY_EVENTS: &str = "invalid-notify-events";

    /// Every code with the one sentence that says what it means: the rules of the SARIF
    /// output (their help text), in the order above.
    pub const ALL: &[(&str, &str)] = &[
        (IO, "The plan file could not be read."),
        (
            TOO_LARGE,
            "The plan file is larger than swing reads (10 MiB).",
        ),
        (NOT_UTF8, "The plan file is not UTF-8 text."),
        (EMPTY, "The plan file holds no plan."),
        (SYNTAX, "The plan file is not valid YAML."),
        (DUPLICATE_KEY, "A key is written twice in the same mapping."),
        (TOO_DEEP, "The plan nests deeper than 64 levels."),
        (
            ALIAS_LIMIT,
            "YAML aliases expand to more nodes than swing accepts.",
        ),
        (
            MULTIPLE_DOCUMENTS,
            "The file holds more than one YAML document; one plan per file.",
        ),
        (COMPLEX_KEY, "A mapping key is not a plain string."),
        (UNSUPPORTED_TAG, "A YAML tag swing does not read is used."),
        (
            NOT_A_MAPPING,
            "The plan is not a mapping of keys to values.",
        ),
        (UNKNOWN_KEY, "A key the plan format does not define."),
        (MISSING_KEY, "A key the plan format requires is missing."),
        (WRONG_TYPE, "A value has the wrong type."),
        (BAD_VALUE, "A value is not one the plan format allows."),
        (
            UNSUPPORTED_VERSION,
            "The plan's format_version is not one this swing reads.",
        ),
        (BAD_NAME, "A name is not a valid identifier."),
        (
            BAD_VERSION,
            "The target version is not a dotted version number.",
        ),
        (
            BAD_DURATION,
            "A duration is not written like 90s, 15m or 1h30m.",
        ),
        (BAD_TIMESTAMP, "A timestamp is not RFC 3339 with an offset."),
        (BAD_HOSTNAME, "A host name or address is not valid."),
        (OUT_OF_RANGE, "A number is outside its allowed range."),
        (
            LITERAL_SECRET,
            "A secret is written literally instead of as a ${env:...} or ${file:...} reference.",
        ),
        (
            UNKNOWN_VARIANT,
            "A value names a kind the plan format does not have.",
        ),
        (
            APPLIANCE_COUNT,
            "The number of appliances does not fit the change.",
        ),
        (
            PRIMARY_EQUALS_BACKUP,
            "The primary and the backup are the same appliance.",
        ),
        (
            UNKNOWN_APPLIANCE,
            "An appliance name is used that the plan does not define.",
        ),
        (
            UNKNOWN_PROVIDER,
            "A provider name is used that the plan does not define.",
        ),
        (
            FAILOVER_NEEDS_TWO,
            "A failover change needs two appliances.",
        ),
        (
            TWO_WITHOUT_PAIRING,
            "Two appliances need a failover or a migration section.",
        ),
        (
            FAILOVER_AND_MIGRATION,
            "A change is either a failover upgrade or a migration, not both.",
        ),
        (
            PROVIDER_WRONG_TYPE,
            "A provider of the wrong type is used for this purpose.",
        ),
        (
            FINAL_PRIMARY_ON_SYNC,
            "final_primary applies only to asynchronous failover upgrades.",
        ),
        (
            WINDOW_END_BEFORE_START,
            "A maintenance window ends before it starts.",
        ),
        (WINDOWS_OVERLAP, "Two maintenance windows overlap."),
        (
            DUPLICATE_WINDOW,
            "Two maintenance windows have the same name.",
        ),
        (DUPLICATE_ADDRESS, "Two appliances have the same address."),
        (
            MANUAL_WITHOUT_WINDOWS,
            "A manual change needs maintenance windows.",
        ),
        (
            ASYNC_ONE_WINDOW,
            "An asynchronous failover upgrade needs two maintenance windows.",
        ),
        (
            OPERATOR_COMMAND,
            "The operator setting and its command do not fit together.",
        ),
        (
            TARGET_NOT_NEWER,
            "The target version is not newer than the current version.",
        ),
        (BAD_ENDPOINT, "An endpoint is not written as host:port."),
        (
            BAD_NOTIFY_URL,
            "A webhook URL is not a URL, or sends in plain http beyond this host.",
        ),
        (
            NOTIFY_EVENTS,
            "A notification's `events` is empty or names an event twice.",
        ),
    ];

    /// The sentence of `code` in [`ALL`], if it is one.
    pub fn describe(code: &str) -> Option<&'static str> {
        ALL.iter().find(|(c, _)| *c == code).map(|(_, d)| *d)
    }
}

/// Key names whose values are secrets (case-insensitive substring match).
const SECRET_KEY_WORDS: [&str; 5] = ["secret", "password", "passwd", "passphrase", "token"];

/// The plan text as shown in diagnostics: every value written after a secret-looking key
/// (`password:`, `client_secret:`, `tsig: { secret: … }`, misspelt ones too) that is not a
/// `${…}` reference is replaced by `*`, byte for byte, so offsets stay valid. Source excerpts in
/// reports therefore never show a literal secret, even for files that do not parse.
pub fn mask_secrets(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            // Only a word written as a key (`word:`, `"word":`) can start a secret value; the
            // cheap look at what follows comes before the fuzzy match of the word.
            if is_key_end(&bytes, i) {
                let key = String::from_utf8_lossy(&bytes[start..i]).to_ascii_lowercase();
                if looks_secret(&key) {
                    mask_value_after_key(&mut bytes, i);
                }
            }
        } else {
            i += 1;
        }
    }
    // Only whole bytes were replaced by ASCII `*` (see `mask_value_after_key`).
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether the word ending at `i` is followed by what [`mask_value_after_key`] needs before
/// a value: an optional closing quote, spaces, then `:`.
fn is_key_end(bytes: &[u8], mut i: usize) -> bool {
    if matches!(bytes.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    bytes.get(i) == Some(&b':')
}

/// Whether a key name looks like it holds a secret, misspellings included (`pasword`).
fn looks_secret(key: &str) -> bool {
    SECRET_KEY_WORDS.iter().any(|w| key.contains(w))
        || key.split(['_', '-']).any(|part| {
            part.len() >= 4
                && SECRET_KEY_WORDS.iter().any(|w| {
                    // Two edits change the length by at most two, and the letters by at most
                    // four (each edit removes one and adds one): both cheap to rule out first.
                    part.len().abs_diff(w.len()) <= 2
                        && letters_apart(part, w) <= 4
                        && strsim::damerau_levenshtein(part, w) <= 2
                })
        })
}

/// How many letters two words do not share, counted with multiplicity (bytes, so any text
/// works): at most twice their edit distance.
fn letters_apart(a: &str, b: &str) -> u32 {
    let mut counts = [0i32; 256];
    for c in a.bytes() {
        counts[usize::from(c)] += 1;
    }
    for c in b.bytes() {
        counts[usize::from(c)] -= 1;
    }
    counts.iter().map(|n| n.unsigned_abs()).sum()
}

fn mask_value_after_key(bytes: &mut [u8], mut i: usize) {
    // The rest of the key name, an optional closing quote, spaces, then `:` and a blank.
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-')
    {
        i += 1;
    }
    if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
        i += 1;
    }
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    if i >= bytes.len() || bytes[i] != b':' {
        return;
    }
    i += 1;
    if i < bytes.len() && !matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
        return;
    }
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    let quote = match bytes.get(i) {
        Some(q @ (b'"' | b'\'')) => Some(*q),
        _ => None,
    };
    let value_start = if quote.is_some() { i + 1 } else { i };
    let rest = &bytes[value_start.min(bytes.len())..];
    if rest.starts_with(b"${env:") || rest.starts_with(b"${file:") {
        return;
    }
    if matches!(bytes.get(i), None | Some(b'#' | b'\n' | b'\r')) {
        return;
    }
    let mut j = value_start;
    while j < bytes.len() && bytes[j] != b'\n' && bytes[j] != b'\r' {
        match quote {
            Some(q) if bytes[j] == q => break,
            None if bytes[j] == b',' || bytes[j] == b'}' || bytes[j] == b']' => break,
            None if bytes[j] == b' ' && bytes.get(j + 1) == Some(&b'#') => break,
            _ => {}
        }
        j += 1;
    }
    for b in &mut bytes[value_start..j] {
        // Continuation bytes of a multi-byte character are masked too, so the result is ASCII
        // in that range and still valid UTF-8.
        *b = b'*';
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The cheap filter never rules out a word the edit distance would have matched.
        #[test]
        fn letters_apart_is_at_most_twice_the_edit_distance(a in "[a-z_]{0,12}", b in "[a-z_]{0,12}") {
            prop_assert!(letters_apart(&a, &b) as usize <= 2 * strsim::damerau_levenshtein(&a, &b));
        }
    }

    #[test]
    fn misspelt_secret_keys_are_still_masked() {
        let masked = mask_secrets("pasword: hunter2\nclient_secrte: abc\nname: x\n");
        assert!(
            !masked.contains("hunter2") && !masked.contains("abc"),
            "{masked}"
        );
        assert!(masked.contains("name: x"), "{masked}");
    }
}
