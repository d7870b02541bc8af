//! Shape checks: the loaded JSON value against the shape schema (`swing_schema::plan_schema`,
//! jsonschema), and the lowering of a well-shaped value into the typed [`Plan`]. (Editors get
//! the committed `schema/plan.schema.json`, which adds the cross-field rules `semantic` owns.)
//!
//! Owns turning jsonschema's errors into pinpoint diagnostics: unknown keys at the key with a
//! "did you mean", missing keys at the parent mapping naming the key, tagged unions
//! (`switch.method`, provider `type`) judged by their discriminator instead of jsonschema's
//! `oneOf` summary, and literal secrets pointed at but never quoted.
//! Must not: run cross-field rules (that is `semantic`) or echo a value that may be a secret —
//! jsonschema's own `Display` quotes instance values, so it is never used for messages.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;
use swing_schema::DurationSpec;
use swing_schema::Plan;
use swing_schema::duration::{DURATION_PATTERN, MAX_DURATION_SECS};
use swing_schema::plan::{MAX_NAME_LEN, WINDOW_NAME_PATTERN};
use swing_schema::plan::{PLAN_NAME_PATTERN, VERSION_PATTERN};
use swing_schema::secret::SECRET_REF_PATTERN;

use crate::diagnostics::{DiagnosticBuilder, PlanDiagnostic, Severity, Span, WithHelp, codes};
use crate::load::{Document, SpanIndex, escape_pointer_segment, unescape_pointer_segment};

struct Compiled {
    schema: Value,
    validator: Result<Validator, String>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let schema = swing_schema::plan_schema();
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| e.to_string());
        Compiled { schema, validator }
    })
}

/// Validates the document's shape. Plain numbers written where text is expected (`version:
/// 25.1`) are first taken as the text they were written as.
pub(super) fn check(b: &DiagnosticBuilder, doc: &mut Document) -> Vec<PlanDiagnostic> {
    let c = compiled();
    let validator = match &c.validator {
        Ok(v) => v,
        Err(e) => {
            return vec![b.whole_file(
                Severity::Error,
                codes::BAD_VALUE,
                format!("internal error: the plan schema does not compile: {e}"),
            )];
        }
    };
    for _ in 0..4 {
        let mut coerce = Vec::new();
        for err in validator.iter_errors(&doc.value) {
            collect_coercions(&err, &doc.spans, &mut coerce);
        }
        if coerce.is_empty() {
            break;
        }
        for (pointer, text) in coerce {
            if let Some(slot) = doc.value.pointer_mut(&pointer) {
                *slot = Value::String(text);
            }
        }
    }
    let mut out = Vec::new();
    let ctx = Ctx {
        b,
        spans: &doc.spans,
        value: &doc.value,
        schema: &c.schema,
    };
    for err in validator.iter_errors(&doc.value) {
        ctx.map_error(&err, &mut out);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|d| seen.insert((d.code, d.line, d.column, d.message.clone())));
    out
}

fn collect_coercions(
    err: &ValidationError<'_>,
    spans: &SpanIndex,
    out: &mut Vec<(String, String)>,
) {
    match err.kind() {
        ValidationErrorKind::Type { kind } => {
            let wants_string = match kind {
                TypeKind::Single(t) => t.to_string() == "string",
                TypeKind::Multiple(set) => set.iter().any(|t| t.to_string() == "string"),
            };
            if wants_string && err.instance().is_number() {
                let p = err.instance_path().as_str().to_owned();
                if let Some(text) = spans.get(&p).and_then(|n| n.plain_number_text.clone()) {
                    out.push((p, text));
                }
            }
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            for branch in context {
                for e in branch {
                    collect_coercions(e, spans, out);
                }
            }
        }
        _ => {}
    }
}

struct Ctx<'a> {
    b: &'a DiagnosticBuilder,
    spans: &'a SpanIndex,
    value: &'a Value,
    schema: &'a Value,
}

impl Ctx<'_> {
    fn map_error(&self, err: &ValidationError<'_>, out: &mut Vec<PlanDiagnostic>) {
        self.map_error_at("", err, out);
    }

    /// Maps one error; `prefix` is prepended to its instance path (for errors of a branch
    /// validated on its own, whose paths are relative to the union's node).
    fn map_error_at(&self, prefix: &str, err: &ValidationError<'_>, out: &mut Vec<PlanDiagnostic>) {
        let pointer = format!("{prefix}{}", err.instance_path().as_str());
        let shown = display_path(&pointer);
        let b = self.b;
        match err.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = self.allowed_keys(&pointer);
                for key in unexpected {
                    let child = format!("{pointer}/{}", escape_pointer_segment(key));
                    let span = self.spans.key_or_value_span(&child);
                    let place = if pointer.is_empty() {
                        "at the top level of the plan".to_owned()
                    } else {
                        format!("in `{shown}`")
                    };
                    let mut d = b.at(
                        Severity::Error,
                        codes::UNKNOWN_KEY,
                        span,
                        "unknown key",
                        format!("unknown key `{}` {place}", short(key)),
                    );
                    d = match closest(key, allowed.iter().map(String::as_str)) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None if !allowed.is_empty() => {
                            d.help(format!("valid keys here: {}", allowed.join(", ")))
                        }
                        None => d,
                    };
                    out.push(d);
                }
            }
            ValidationErrorKind::Required { property } => {
                let prop = property.as_str().unwrap_or_default();
                // A misspelt key (`adress`) is reported once, as an unknown key with a "did you
                // mean", not a second time as the missing key it was meant to be.
                let allowed = self.allowed_keys(&pointer);
                let misspelt = self
                    .value
                    .pointer(&pointer)
                    .and_then(Value::as_object)
                    .is_some_and(|o| {
                        o.keys().any(|k| {
                            !allowed.contains(k) && closest(k, std::iter::once(prop)).is_some()
                        })
                    });
                if misspelt {
                    return;
                }
                let span = self.parent_span(&pointer);
                let inst = self.value.pointer(&pointer);
                let message = if let Some(m) = inst
                    .and_then(|v| v.get("method"))
                    .and_then(Value::as_str)
                    .filter(|_| pointer.ends_with("/switch"))
                {
                    format!("switch method `{m}` needs `{prop}`")
                } else if let Some(t) = inst
                    .and_then(|v| v.get("type"))
                    .and_then(Value::as_str)
                    .filter(|_| is_provider(&pointer))
                {
                    format!(
                        "provider `{}` of type `{t}` needs `{prop}`",
                        last_segment(&pointer)
                    )
                } else if pointer.is_empty() {
                    format!("the plan is missing `{prop}`")
                } else {
                    format!("`{shown}` is missing `{prop}`")
                };
                let mut d = b.at(
                    Severity::Error,
                    codes::MISSING_KEY,
                    span,
                    format!("missing `{prop}`"),
                    message,
                );
                let desc = self.property_description(&pointer, prop);
                d = d.help(match desc {
                    Some(desc) => format!("add `{prop}:` — {}", lower_first(&desc)),
                    None => format!("add `{prop}:`"),
                });
                out.push(d);
            }
            ValidationErrorKind::Type { kind } => {
                let expected = type_kind_words(kind);
                let found = json_type_words(err.instance());
                out.push(
                    b.at(
                        Severity::Error,
                        codes::WRONG_TYPE,
                        self.spans.value_span(&pointer),
                        format!("expected {expected}"),
                        format!("{} must be {expected}, not {found}", subject(&pointer)),
                    )
                    .help(self.describe_or(&pointer, "see docs/plan-format.md")),
                );
            }
            ValidationErrorKind::Constant { expected_value } => {
                let span = self.spans.value_span(&pointer);
                if pointer == "/version" {
                    let found = match err.instance() {
                        v if v.is_number() => v.to_string(),
                        v => json_type_words(v),
                    };
                    out.push(
                        b.at(
                            Severity::Error,
                            codes::UNSUPPORTED_VERSION,
                            span,
                            "unsupported version",
                            format!("plan format version {found} is not supported; this swing reads version 1"),
                        )
                        .help("write `version: 1`"),
                    );
                } else {
                    out.push(b.at(
                        Severity::Error,
                        codes::BAD_VALUE,
                        span,
                        format!("expected {expected_value}"),
                        format!("`{shown}` must be {expected_value}"),
                    ));
                }
            }
            ValidationErrorKind::Enum { options } => {
                let opts: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(plain_json).collect())
                    .unwrap_or_default();
                let mut d = b.at(
                    Severity::Error,
                    codes::BAD_VALUE,
                    self.spans.value_span(&pointer),
                    format!("expected one of: {}", opts.join(", ")),
                    match err.instance().as_str() {
                        Some(s) => format!(
                            "`{shown}` cannot be `{}`; expected one of: {}",
                            short(s),
                            opts.join(", ")
                        ),
                        None => format!("`{shown}` must be one of: {}", opts.join(", ")),
                    },
                );
                if let Some(s) = err
                    .instance()
                    .as_str()
                    .and_then(|v| closest(v, opts.iter().map(String::as_str)))
                {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                out.push(d);
            }
            ValidationErrorKind::Pattern { pattern } => {
                out.push(self.pattern_error(&pointer, err.instance(), pattern));
            }
            ValidationErrorKind::PropertyNames { error } => {
                let key = error.instance().as_str().unwrap_or_default().to_owned();
                let child = format!("{pointer}/{}", escape_pointer_segment(&key));
                let span = self.spans.key_or_value_span(&child);
                let what = if pointer == "/appliances" {
                    "appliance name"
                } else {
                    "name"
                };
                if key.len() as u64 > MAX_NAME_LEN {
                    out.push(
                        b.at(
                            Severity::Error,
                            codes::BAD_NAME,
                            span,
                            "name too long",
                            format!("{what} `{}` is longer than {MAX_NAME_LEN} bytes", short(&key)),
                        )
                        .help("names become parts of file names; keep them short (e.g. `a`, `east`, `old`)"),
                    );
                    return;
                }
                out.push(
                    b.at(
                        Severity::Error,
                        codes::BAD_NAME,
                        span,
                        "invalid name",
                        format!("{what} `{}` is not allowed", short(&key)),
                    )
                    .help("use lowercase letters, digits and `-`, starting with a letter (e.g. `a`, `east`, `old`)"),
                );
            }
            ValidationErrorKind::MinProperties { .. }
            | ValidationErrorKind::MaxProperties { .. }
                if pointer == "/appliances" =>
            {
                let n = err.instance().as_object().map_or(0, |m| m.len());
                out.push(
                    b.at(
                        Severity::Error,
                        codes::APPLIANCE_COUNT,
                        self.spans.key_or_value_span(&pointer),
                        format!("{n} appliances"),
                        format!("a plan has one or two appliances, this one has {n}"),
                    )
                    .help("one appliance: single upgrade; two: a failover pair or a hardware migration"),
                );
            }
            ValidationErrorKind::Minimum { limit }
            | ValidationErrorKind::Maximum { limit }
            | ValidationErrorKind::ExclusiveMinimum { limit }
            | ValidationErrorKind::ExclusiveMaximum { limit } => {
                let rel = match err.kind() {
                    ValidationErrorKind::Minimum { .. } => "at least",
                    ValidationErrorKind::Maximum { .. } => "at most",
                    ValidationErrorKind::ExclusiveMinimum { .. } => "more than",
                    _ => "less than",
                };
                out.push(
                    b.at(
                        Severity::Error,
                        codes::OUT_OF_RANGE,
                        self.spans.value_span(&pointer),
                        format!("must be {rel} {limit}"),
                        format!("`{shown}` is out of range: it must be {rel} {limit}"),
                    )
                    .help(self.describe_or(&pointer, "see docs/plan-format.md")),
                );
            }
            ValidationErrorKind::Format { format } => {
                let span = self.spans.value_span(&pointer);
                let d = match format.as_str() {
                    "date-time" => b
                        .at(
                            Severity::Error,
                            codes::BAD_TIMESTAMP,
                            span,
                            "not an RFC 3339 timestamp",
                            format!("`{shown}` is not a timestamp with offset"),
                        )
                        .help("write e.g. 2026-12-05T22:00:00+01:00 (RFC 3339, with the UTC offset)"),
                    "hostname" => b
                        .at(
                            Severity::Error,
                            codes::BAD_HOSTNAME,
                            span,
                            "not a hostname",
                            format!("`{shown}` is not a valid hostname"),
                        )
                        .help("write the name clients resolve, e.g. access.example.com (no scheme, no port, no path)"),
                    other => b.at(
                        Severity::Error,
                        codes::BAD_VALUE,
                        span,
                        format!("not a valid {other}"),
                        format!("`{shown}` is not a valid {other}"),
                    ),
                };
                out.push(d);
            }
            ValidationErrorKind::OneOfNotValid { context }
            | ValidationErrorKind::AnyOf { context } => {
                self.union_error(prefix, &pointer, err.instance(), context, out);
            }
            ValidationErrorKind::MaxLength { limit } => out.push(
                b.at(
                    Severity::Error,
                    codes::OUT_OF_RANGE,
                    self.spans.value_span(&pointer),
                    format!("longer than {limit}"),
                    format!("`{shown}` is longer than {limit} characters"),
                )
                .help(self.describe_or(&pointer, "see docs/plan-format.md")),
            ),
            ValidationErrorKind::MaxItems { limit } => out.push(
                b.at(
                    Severity::Error,
                    codes::OUT_OF_RANGE,
                    self.spans.value_span(&pointer),
                    format!("more than {limit} items"),
                    format!("`{shown}` has more than {limit} items"),
                )
                .help(self.describe_or(&pointer, "see docs/plan-format.md")),
            ),
            ValidationErrorKind::MaxProperties { limit } => out.push(
                b.at(
                    Severity::Error,
                    codes::OUT_OF_RANGE,
                    self.spans.key_or_value_span(&pointer),
                    format!("more than {limit} entries"),
                    format!("`{shown}` has more than {limit} entries"),
                )
                .help(self.describe_or(&pointer, "see docs/plan-format.md")),
            ),
            ValidationErrorKind::MinItems { limit } => out.push(b.at(
                Severity::Error,
                codes::BAD_VALUE,
                self.spans.value_span(&pointer),
                format!("at least {limit} item(s)"),
                format!("`{shown}` needs at least {limit} item(s)"),
            )),
            _ => out.push(
                b.at(
                    Severity::Error,
                    codes::BAD_VALUE,
                    self.spans.value_span(&pointer),
                    format!("not allowed ({})", err.kind().keyword()),
                    format!("`{shown}` is not valid here"),
                )
                .help(self.describe_or(&pointer, "see docs/plan-format.md")),
            ),
        }
    }

    fn pattern_error(&self, pointer: &str, instance: &Value, pattern: &str) -> PlanDiagnostic {
        let b = self.b;
        let shown = display_path(pointer);
        let span = self.spans.value_span(pointer);
        let text = instance.as_str().unwrap_or_default();
        if pattern == SECRET_REF_PATTERN {
            let (message, label) = if text.starts_with("${") {
                (
                    format!("`{shown}` is not a valid secret reference"),
                    "only ${env:NAME} or ${file:PATH}",
                )
            } else {
                (
                    format!("`{shown}` holds a literal secret"),
                    "literal secret; use ${env:NAME}",
                )
            };
            // The value is never quoted: it may be a real password.
            return b
                .at(Severity::Error, codes::LITERAL_SECRET, span, label, message)
                .help(
                    "write a reference such as ${env:NAME} or ${file:./secrets/NAME}; \
                     the value is read only when a provider needs it, and never shown",
                );
        }
        if pattern == VERSION_PATTERN {
            return b
                .at(
                    Severity::Error,
                    codes::BAD_VERSION,
                    span,
                    "not a dotted version",
                    format!(
                        "`{shown}` must be a dotted numeric version, not `{}`",
                        short(text)
                    ),
                )
                .help("write it like \"25.1.3\" (numbers separated by dots)");
        }
        if pattern == PLAN_NAME_PATTERN {
            return b
                .at(
                    Severity::Error,
                    codes::BAD_NAME,
                    span,
                    "invalid change name",
                    format!("change name `{}` is not allowed", short(text)),
                )
                .help("use lowercase letters, digits and `-` (it becomes part of lock, journal and backup file names)");
        }
        if pattern == WINDOW_NAME_PATTERN {
            return b
                .at(
                    Severity::Error,
                    codes::BAD_NAME,
                    span,
                    "invalid window name",
                    format!("window name `{}` is not allowed", short(text)),
                )
                .help("use letters, digits, `.`, `_` and `-` (e.g. `saturday-night`); journals and `--window` name windows by it");
        }
        if pattern == DURATION_PATTERN && looks_like_duration(text) {
            // Digits and units, but more of them than the pattern allows: too long, not wrong.
            return b
                .at(
                    Severity::Error,
                    codes::BAD_DURATION,
                    span,
                    "too long",
                    format!(
                        "`{shown}` is longer than {}, the longest duration swing accepts",
                        DurationSpec::from_secs(MAX_DURATION_SECS)
                    ),
                )
                .help(
                    "a change, window or timeout is at most 366d; check the number and its unit",
                );
        }
        if pattern == DURATION_PATTERN {
            return b
                .at(
                    Severity::Error,
                    codes::BAD_DURATION,
                    span,
                    "not a duration",
                    format!("`{shown}` must be a duration, not `{}`", short(text)),
                )
                .help("write e.g. 30s, 15m, 4h, 8d or 1h30m");
        }
        b.at(
            Severity::Error,
            codes::BAD_VALUE,
            span,
            "does not match the expected form",
            format!("`{shown}` does not match the expected form `{pattern}`"),
        )
    }

    fn union_error(
        &self,
        prefix: &str,
        pointer: &str,
        instance: &Value,
        context: &[Vec<ValidationError<'static>>],
        out: &mut Vec<PlanDiagnostic>,
    ) {
        let b = self.b;
        let shown = display_path(pointer);
        let node = schema_at(self.schema, self.value, pointer);
        let tagged = node.and_then(|n| tagged_union(self.schema, n));
        if let Some((union, disc, values)) = tagged {
            let Some(obj) = instance.as_object() else {
                out.push(b.at(
                    Severity::Error,
                    codes::WRONG_TYPE,
                    self.spans.value_span(pointer),
                    "expected a mapping",
                    format!(
                        "`{shown}` must be a mapping, not {}",
                        json_type_words(instance)
                    ),
                ));
                return;
            };
            let what = if disc == "method" {
                "switch method"
            } else {
                "provider type"
            };
            match obj.get(&disc) {
                None => {
                    out.push(
                        b.at(
                            Severity::Error,
                            codes::MISSING_KEY,
                            self.parent_span(pointer),
                            format!("missing `{disc}`"),
                            format!("`{shown}` is missing `{disc}`"),
                        )
                        .help(format!("add `{disc}:` with one of: {}", values.join(", "))),
                    );
                }
                Some(v) => {
                    let idx = v.as_str().and_then(|s| values.iter().position(|x| x == s));
                    let branch = idx.and_then(|i| {
                        union
                            .get("oneOf")
                            .and_then(Value::as_array)
                            .and_then(|a| a.get(i))
                    });
                    match branch {
                        Some(branch) => self.branch_errors(pointer, instance, branch, out),
                        None => {
                            let span = self.spans.value_span(&format!("{pointer}/{disc}"));
                            let mut d = b.at(
                                Severity::Error,
                                codes::UNKNOWN_VARIANT,
                                span,
                                format!("unknown {what}"),
                                match v.as_str() {
                                    Some(s) => format!(
                                        "unknown {what} `{}`; expected one of: {}",
                                        short(s),
                                        values.join(", ")
                                    ),
                                    None => format!("{what} must be one of: {}", values.join(", ")),
                                },
                            );
                            if let Some(s) = v
                                .as_str()
                                .and_then(|s| closest(s, values.iter().map(String::as_str)))
                            {
                                d = d.help(format!("did you mean `{s}`?"));
                            }
                            out.push(d);
                        }
                    }
                }
            }
            return;
        }
        // Untagged unions (`tsig: ~ | {...}`, `client_id: text | ${env:..}`): report the branch
        // that got furthest, i.e. the one whose errors are not a type mismatch at this node.
        let deeper: Vec<&Vec<ValidationError<'static>>> = context
            .iter()
            .filter(|errs| {
                !errs.iter().all(|e| {
                    e.instance_path().as_str() == pointer
                        && matches!(e.kind(), ValidationErrorKind::Type { .. })
                })
            })
            .collect();
        if let Some(errors) = deeper.first() {
            for e in errors.iter() {
                self.map_error_at(prefix, e, out);
            }
            return;
        }
        let mut expected: Vec<String> = Vec::new();
        for errs in context {
            for e in errs {
                if let ValidationErrorKind::Type { kind } = e.kind() {
                    let w = type_kind_words(kind);
                    if !expected.contains(&w) {
                        expected.push(w);
                    }
                }
            }
        }
        let expected = if expected.is_empty() {
            "a different value".to_owned()
        } else {
            expected.join(" or ")
        };
        out.push(
            b.at(
                Severity::Error,
                codes::WRONG_TYPE,
                self.spans.value_span(pointer),
                format!("expected {expected}"),
                format!(
                    "`{shown}` must be {expected}, not {}",
                    json_type_words(instance)
                ),
            )
            .help(self.describe_or(pointer, "see docs/plan-format.md")),
        );
    }

    /// Validates `instance` against one branch of a tagged union and maps its errors.
    fn branch_errors(
        &self,
        pointer: &str,
        instance: &Value,
        branch: &Value,
        out: &mut Vec<PlanDiagnostic>,
    ) {
        let mut sub = resolve(self.schema, branch).clone();
        if let (Some(obj), Some(defs)) = (sub.as_object_mut(), self.schema.get("$defs")) {
            obj.insert("$defs".to_owned(), defs.clone());
        }
        match jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&sub)
        {
            Ok(v) => {
                for e in v.iter_errors(instance) {
                    self.map_error_at(pointer, &e, out);
                }
            }
            Err(_) => out.push(self.b.at(
                Severity::Error,
                codes::BAD_VALUE,
                self.spans.value_span(pointer),
                "not valid",
                format!("`{}` is not valid", display_path(pointer)),
            )),
        }
    }

    /// Where to point for "this mapping lacks a key": the mapping's own key, or for the root
    /// the first key of the plan.
    fn parent_span(&self, pointer: &str) -> Span {
        if pointer.is_empty() {
            return self
                .spans
                .child_keys("")
                .first()
                .map_or(Span::default(), |(_, s)| *s);
        }
        self.spans.key_or_value_span(pointer)
    }

    fn allowed_keys(&self, pointer: &str) -> Vec<String> {
        let Some(node) = schema_at(self.schema, self.value, pointer) else {
            return Vec::new();
        };
        let inst = self.value.pointer(pointer);
        let node = pick_branch(self.schema, node, inst);
        node.get("properties")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn property_description(&self, pointer: &str, prop: &str) -> Option<String> {
        let node = schema_at(self.schema, self.value, pointer)?;
        let node = pick_branch(self.schema, node, self.value.pointer(pointer));
        let p = node.get("properties")?.get(prop)?;
        p.get("description")
            .or_else(|| resolve(self.schema, p).get("description"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn describe_or(&self, pointer: &str, fallback: &str) -> String {
        let Some((parent, last)) = pointer.rsplit_once('/') else {
            return fallback.to_owned();
        };
        let key = unescape_pointer_segment(last);
        match self.property_description(parent, &key) {
            Some(d) => format!("`{key}`: {}", lower_first(&d)),
            None => fallback.to_owned(),
        }
    }
}

/// Follows `$ref`s within the root schema.
fn resolve<'s>(root: &'s Value, mut node: &'s Value) -> &'s Value {
    for _ in 0..16 {
        let Some(r) = node.get("$ref").and_then(Value::as_str) else {
            break;
        };
        match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
            Some(t) => node = t,
            None => break,
        }
    }
    node
}

/// The (resolved) schema node that validates the instance at `pointer`, before choosing among
/// `oneOf`/`anyOf` branches at that node.
fn schema_at<'s>(root: &'s Value, value: &Value, pointer: &str) -> Option<&'s Value> {
    let mut node = resolve(root, root);
    let mut inst = Some(value);
    if pointer.is_empty() {
        return Some(node);
    }
    for seg in pointer.split('/').skip(1) {
        let key = unescape_pointer_segment(seg);
        node = pick_branch(root, node, inst);
        match inst {
            Some(Value::Array(items)) => {
                node = resolve(root, node.get("items")?);
                inst = key.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            _ => {
                let next = node
                    .get("properties")
                    .and_then(|p| p.get(&key))
                    .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
                node = resolve(root, next);
                inst = inst.and_then(|v| v.get(&key));
            }
        }
    }
    Some(node)
}

/// Chooses the `oneOf`/`anyOf` branch that fits `inst` (by discriminator, else by JSON type).
fn pick_branch<'s>(root: &'s Value, node: &'s Value, inst: Option<&Value>) -> &'s Value {
    let node = resolve(root, node);
    let Some(branches) = node
        .get("oneOf")
        .or_else(|| node.get("anyOf"))
        .and_then(Value::as_array)
    else {
        return node;
    };
    if let Some((disc, values)) = discriminator(root, node)
        && let Some(v) = inst.and_then(|i| i.get(&disc)).and_then(Value::as_str)
        && let Some(i) = values.iter().position(|x| x == v)
        && let Some(b) = branches.get(i)
    {
        return resolve(root, b);
    }
    let want = match inst {
        Some(Value::Array(_)) => "array",
        Some(Value::String(_)) => "string",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::Null) => "null",
        _ => "object",
    };
    for b in branches {
        let r = resolve(root, b);
        let t = r.get("type");
        let fits = match t {
            Some(Value::String(s)) => s == want || (want == "number" && s == "integer"),
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(want)),
            _ => want == "object" && r.get("properties").is_some(),
        };
        if fits {
            return r;
        }
    }
    node
}

/// For a `oneOf` whose branches each fix one property with `const` (serde's internally tagged
/// enums), that property's name and the values in branch order.
fn discriminator(root: &Value, node: &Value) -> Option<(String, Vec<String>)> {
    let node = resolve(root, node);
    let branches = node.get("oneOf")?.as_array()?;
    let mut disc: Option<String> = None;
    let mut values = Vec::new();
    for b in branches {
        let b = resolve(root, b);
        let props = b.get("properties")?.as_object()?;
        let (name, c) = props.iter().find_map(|(k, v)| {
            v.get("const")
                .and_then(Value::as_str)
                .map(|c| (k.clone(), c))
        })?;
        match &disc {
            Some(d) if *d != name => return None,
            _ => disc = Some(name),
        }
        values.push(c.to_owned());
    }
    disc.map(|d| (d, values))
}

/// The tagged union at `node`: the node itself when it is one, or the one non-null branch of
/// an optional (`anyOf: [union, null]`). Returns the union node, its discriminator and values.
fn tagged_union<'s>(root: &'s Value, node: &'s Value) -> Option<(&'s Value, String, Vec<String>)> {
    let node = resolve(root, node);
    if let Some((d, v)) = discriminator(root, node) {
        return Some((node, d, v));
    }
    let branches = node
        .get("anyOf")
        .or_else(|| node.get("oneOf"))?
        .as_array()?;
    branches.iter().find_map(|b| {
        let b = resolve(root, b);
        discriminator(root, b).map(|(d, v)| (b, d, v))
    })
}

/// Deserializes the (schema-valid) value into the typed plan. Errors point at the failing node.
pub(super) fn lower(b: &DiagnosticBuilder, doc: &Document) -> Result<Plan, Box<PlanDiagnostic>> {
    let mut plan = serde_path_to_error::deserialize::<_, Plan>(doc.value.clone()).map_err(|e| {
        let mut pointer = String::new();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => {
                    pointer.push('/');
                    pointer.push_str(&index.to_string());
                }
                serde_path_to_error::Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&escape_pointer_segment(key));
                }
                _ => {}
            }
        }
        let shown = display_path(&pointer);
        let raw = e.inner().to_string();
        let secretish = pointer.contains("secret") || pointer.contains("password");
        let (code, msg) = if secretish {
            (
                codes::LITERAL_SECRET,
                format!("`{shown}` is not a valid secret reference"),
            )
        } else if raw.contains("duration") {
            (codes::BAD_DURATION, format!("`{shown}`: {raw}"))
        } else {
            (codes::BAD_VALUE, format!("`{shown}`: {raw}"))
        };
        Box::new(b.at(
            Severity::Error,
            code,
            doc.spans.value_span(&pointer),
            "here",
            msg,
        ))
    })?;
    default_window_names(&mut plan);
    Ok(plan)
}

/// A window without `name` is `window-N`, N its place in the plan (1-based), as
/// `plan-format.md` defines.
fn default_window_names(plan: &mut Plan) {
    for (i, w) in plan.windows.iter_mut().enumerate() {
        if w.name.is_empty() {
            w.name = format!("window-{}", i + 1);
        }
    }
}

/// "`failover.switch`" for a node, "the plan" for the root.
fn subject(pointer: &str) -> String {
    if pointer.is_empty() {
        "the plan".to_owned()
    } else {
        format!("`{}`", display_path(pointer))
    }
}

/// `/failover/switch/method` → `failover.switch.method`; `/windows/1/end` → `windows[1].end`.
pub(crate) fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = unescape_pointer_segment(seg);
        if !seg.is_empty() && seg.bytes().all(|c| c.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&short(&seg));
        }
    }
    if out.is_empty() {
        "the plan".to_owned()
    } else {
        out
    }
}

fn is_provider(pointer: &str) -> bool {
    pointer.starts_with("/providers/") && pointer.matches('/').count() == 2
}

fn last_segment(pointer: &str) -> String {
    unescape_pointer_segment(pointer.rsplit('/').next().unwrap_or_default())
}

/// The closest candidate to a misspelt word, if it is close enough to be a plausible typo.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    let w = word.to_lowercase();
    candidates
        .map(|c| (strsim::damerau_levenshtein(&w, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(2) && *d < c.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Only digits and duration units: a duration whose numbers are too long for the pattern.
fn looks_like_duration(text: &str) -> bool {
    !text.is_empty()
        && text.ends_with(['d', 'h', 'm', 's'])
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'd' | 'h' | 'm' | 's'))
}

fn short(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 40 {
        let mut t: String = s.chars().take(40).collect();
        t.push('…');
        t
    } else {
        s
    }
}

fn lower_first(s: &str) -> String {
    let s = s.trim_end_matches('.');
    let mut c = s.chars();
    match c.next() {
        Some(f) if c.clone().next().is_some_and(|n| n.is_lowercase()) => {
            f.to_lowercase().collect::<String>() + c.as_str()
        }
        Some(f) => f.to_string() + c.as_str(),
        None => String::new(),
    }
}

fn type_words(t: &str) -> &'static str {
    match t {
        "object" => "a mapping",
        "array" => "a list",
        "string" => "text",
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "true or false",
        "null" => "empty",
        _ => "a value",
    }
}

fn type_kind_words(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => type_words(&t.to_string()).to_owned(),
        TypeKind::Multiple(set) => {
            let words: Vec<&str> = set
                .iter()
                .map(|t| t.to_string())
                .filter(|t| t != "null")
                .map(|t| type_words(&t))
                .collect();
            if words.is_empty() {
                "empty".to_owned()
            } else {
                words.join(" or ")
            }
        }
    }
}

fn json_type_words(v: &Value) -> String {
    match v {
        Value::Null => "empty".into(),
        Value::Bool(_) => "true/false".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => "a whole number".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "text".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn plain_json(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
