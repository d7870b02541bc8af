//! Loading: plan text → spanned YAML tree → `serde_json::Value` + a JSON-pointer → span index.
//!
//! Owns reading a plan file safely (size cap, UTF-8), parsing YAML with saphyr's event parser
//! (which keeps positions), the guards against hostile input (nesting depth, alias expansion
//! budget, one document only, duplicate keys reported with both places), and the mapping from a
//! JSON pointer (`/failover/backup`) back to the bytes of the YAML node and of its key.
//! Must not: know the plan's shape or meaning (that is `validate`), print, or panic on any input.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use saphyr::{Scalar, ScalarStyle, Tag};
use saphyr_parser::{Event, Marker, Parser, ScanError, SpannedEventReceiver};
use serde_json::{Map, Number, Value};

use crate::diagnostics::{Span, codes};

/// Largest plan file swing reads (10 MiB). Plans are a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Deepest nesting of mappings and lists accepted (plans need about 6).
pub const MAX_DEPTH: usize = 64;
/// Most nodes that alias expansion (`*anchor`) may add to a document, against "YAML bombs".
pub const MAX_ALIAS_NODES: usize = 10_000;

/// A problem met while reading or parsing, before the plan's shape is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// Stable problem class, see [`crate::diagnostics::codes`].
    pub code: &'static str,
    /// Where (byte range).
    pub span: Span,
    /// Label under the span.
    pub label: String,
    /// One sentence.
    pub message: String,
    /// What to do.
    pub help: Option<String>,
    /// A second place that matters (e.g. the first occurrence of a duplicate key).
    pub related: Option<(Span, String)>,
}

/// Error reading a plan file from disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is larger than {limit} bytes; a plan is a few kilobytes — is this the right file?"
    )]
    TooLarge { path: String, limit: u64 },
}

/// Reads a plan or saved-plan file through [`crate::input_file`] (a regular file, never
/// blocking on a FIFO), refusing more than [`MAX_FILE_BYTES`]. Returns the raw bytes.
pub fn read_capped(path: &Path) -> Result<Vec<u8>, ReadError> {
    use crate::input_file::{InputFileError, read_limited};
    let shown = path.display().to_string();
    match read_limited(path, MAX_FILE_BYTES, "a plan is a few kilobytes") {
        Ok(file) => Ok(file.bytes),
        Err(InputFileError::TooLarge { limit, .. }) => {
            Err(ReadError::TooLarge { path: shown, limit })
        }
        Err(InputFileError::NotRegular { kind, .. }) => Err(ReadError::Io {
            path: shown,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("is {kind}, not a regular file (give a plan file)"),
            ),
        }),
        Err(InputFileError::Io { source, .. }) => Err(ReadError::Io {
            path: shown,
            source,
        }),
    }
}

/// Where a node of the document is: its value and, for a mapping entry, its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpans {
    /// The key of this entry in its parent mapping (None for list items and the root).
    pub key: Option<Span>,
    /// The value (a scalar's text, or a whole mapping / list).
    pub value: Span,
    /// For plain (unquoted) scalars read as numbers: the text as written, so that `25.1`
    /// can be taken as the string "25.1" where the format expects text.
    pub plain_number_text: Option<String>,
}

/// JSON pointer → spans, for every node of the document.
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    map: HashMap<String, NodeSpans>,
}

impl SpanIndex {
    /// Spans of the node at `pointer` (RFC 6901, `""` is the root).
    pub fn get(&self, pointer: &str) -> Option<&NodeSpans> {
        self.map.get(pointer)
    }

    /// The value span of `pointer`, or of its closest ancestor that exists.
    pub fn value_span(&self, pointer: &str) -> Span {
        let mut p = pointer;
        loop {
            if let Some(n) = self.map.get(p) {
                return n.value;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Span::default(),
            }
        }
    }

    /// The span to point at for "this entry": its key when it has one, else its value.
    pub fn key_or_value_span(&self, pointer: &str) -> Span {
        match self.map.get(pointer) {
            Some(NodeSpans { key: Some(k), .. }) => *k,
            Some(n) => n.value,
            None => self.value_span(pointer),
        }
    }

    /// The keys of the mapping at `pointer`, with their spans, in document order.
    pub fn child_keys(&self, pointer: &str) -> Vec<(String, Span)> {
        let prefix = format!("{pointer}/");
        let mut out: Vec<(String, Span)> = self
            .map
            .iter()
            .filter_map(|(p, n)| {
                let rest = p.strip_prefix(&prefix)?;
                if rest.contains('/') {
                    return None;
                }
                Some((unescape_pointer_segment(rest), n.key?))
            })
            .collect();
        out.sort_by_key(|(_, s)| *s);
        out
    }
}

/// A loaded document: the value as JSON and where each node is.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub spans: SpanIndex,
}

/// Outcome of [`parse`]: a document when the YAML could be read (possibly with recoverable
/// problems such as duplicate keys), and every problem found.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub document: Option<Document>,
    pub problems: Vec<LoadProblem>,
}

/// Decodes bytes as UTF-8; the error points at the first invalid byte.
pub fn decode(bytes: &[u8]) -> Result<&str, Box<LoadProblem>> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        Box::new(LoadProblem {
            code: codes::NOT_UTF8,
            span: Span::new(at, at),
            label: "not UTF-8".into(),
            message: format!(
                "the file is not UTF-8 text (invalid byte at offset {at}); is it a binary file?"
            ),
            help: Some("a plan is a YAML text file saved as UTF-8".into()),
            related: None,
        })
    })
}

/// Parses plan text. Never panics; every problem is returned with a span.
pub fn parse(text: &str) -> Parsed {
    let conv = CharToByte::new(text);
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Parsed {
            document: None,
            problems: vec![LoadProblem {
                code: codes::EMPTY,
                span: Span::new(0, 0),
                label: "nothing here".into(),
                message: "the plan file is empty".into(),
                help: Some(
                    "start from one of the examples in plans/examples/ (e.g. single-automatic.yaml)".into(),
                ),
                related: None,
            }],
        };
    }
    let mut builder = Builder::new(&conv);
    // Events are pulled one by one so that loading stops as soon as a guard trips (the parser
    // itself would otherwise go on through a hostile file).
    let mut scan_error = None;
    for event in Parser::new_from_str(text) {
        match event {
            Ok((ev, span)) => builder.on_event(ev, span),
            Err(e) => {
                scan_error = Some(e);
                break;
            }
        }
        if builder.aborted {
            break;
        }
    }
    let mut problems = std::mem::take(&mut builder.problems);
    if builder.aborted {
        return Parsed {
            document: None,
            problems,
        };
    }
    if let Some(e) = scan_error {
        problems.push(syntax_problem(&conv, &e));
        return Parsed {
            document: None,
            problems,
        };
    }
    let Some(root) = builder.root.take() else {
        problems.push(LoadProblem {
            code: codes::EMPTY,
            span: Span::new(0, 0),
            label: "nothing here".into(),
            message: "the plan file holds no YAML document".into(),
            help: Some("start from one of the examples in plans/examples/".into()),
            related: None,
        });
        return Parsed {
            document: None,
            problems,
        };
    };
    let mut spans = SpanIndex::default();
    let value = to_json(root, String::new(), None, &mut spans);
    Parsed {
        document: Some(Document { value, spans }),
        problems,
    }
}

fn syntax_problem(conv: &CharToByte, e: &ScanError) -> LoadProblem {
    let at = conv.byte(e.marker());
    let info = e.info();
    let code = if info.contains("recursion limit") {
        codes::TOO_DEEP
    } else {
        codes::SYNTAX
    };
    let (message, help) = if info.contains("alias expansion") {
        (
            "too many nodes produced by aliases (`*name`)".to_owned(),
            "a plan never needs this many repeated nodes; write them out or remove the aliases",
        )
    } else if info.contains("recursion limit") {
        (
            "nesting too deep for a plan".to_owned(),
            "a plan needs only a few levels of nesting; is this the right file?",
        )
    } else if info.contains("duplicated key") {
        (
            "a key appears twice in the same mapping".to_owned(),
            "remove one of them",
        )
    } else {
        (
            format!("the file is not valid YAML: {info}"),
            "check indentation (spaces, not tabs), colons after keys, and matching quotes and brackets",
        )
    };
    LoadProblem {
        code,
        span: Span::new(at, next_char_end(conv.text, at)),
        label: "here".into(),
        message,
        help: Some(help.into()),
        related: None,
    }
}

fn next_char_end(text: &str, at: usize) -> usize {
    text.get(at..)
        .and_then(|rest| rest.chars().next())
        .map_or(at, |c| at + c.len_utf8())
}

/// Converts saphyr markers (character indices) into byte offsets.
struct CharToByte<'t> {
    text: &'t str,
    ascii: bool,
    /// Byte offset of every 64th character.
    checkpoints: Vec<usize>,
}

impl<'t> CharToByte<'t> {
    const STEP: usize = 64;

    fn new(text: &'t str) -> Self {
        let ascii = text.is_ascii();
        let mut checkpoints = Vec::new();
        if !ascii {
            for (i, (b, _)) in text.char_indices().enumerate() {
                if i % Self::STEP == 0 {
                    checkpoints.push(b);
                }
            }
        }
        CharToByte {
            text,
            ascii,
            checkpoints,
        }
    }

    fn byte(&self, m: &Marker) -> usize {
        self.byte_of_char(m.index())
    }

    fn byte_of_char(&self, idx: usize) -> usize {
        if self.ascii {
            return idx.min(self.text.len());
        }
        let cp = idx / Self::STEP;
        let Some(&base) = self.checkpoints.get(cp) else {
            return self.text.len();
        };
        let rest = idx - cp * Self::STEP;
        self.text[base..]
            .char_indices()
            .nth(rest)
            .map_or(self.text.len(), |(b, _)| base + b)
    }
}

/// A YAML node with byte spans.
#[derive(Debug, Clone)]
struct Node {
    span: Span,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64, String),
    /// A string; `plain_number` is never set here.
    Str(String),
    /// A plain scalar read as a number: the original text is kept.
    Seq(Vec<Node>),
    Map(Vec<(String, Span, Node)>),
}

impl Node {
    fn count(&self) -> usize {
        match &self.kind {
            Kind::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Kind::Map(entries) => 1 + entries.iter().map(|(_, _, n)| 1 + n.count()).sum::<usize>(),
            _ => 1,
        }
    }
    fn depth(&self) -> usize {
        match &self.kind {
            Kind::Seq(items) => 1 + items.iter().map(Node::depth).max().unwrap_or(0),
            Kind::Map(entries) => 1 + entries.iter().map(|(_, _, n)| n.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }
}

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        anchor: usize,
        entries: Vec<(String, Span, Node)>,
        /// The key read, waiting for its value (None: next node is a key).
        pending_key: Option<(String, Span)>,
        /// The key is unusable (complex or duplicate): drop the value that follows.
        skip_value: bool,
    },
}

struct Builder<'c, 't> {
    conv: &'c CharToByte<'t>,
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, (Node, usize, usize)>,
    alias_budget: usize,
    documents: usize,
    problems: Vec<LoadProblem>,
    aborted: bool,
}

impl<'c, 't> Builder<'c, 't> {
    fn new(conv: &'c CharToByte<'t>) -> Self {
        Builder {
            conv,
            stack: Vec::new(),
            root: None,
            anchors: HashMap::new(),
            alias_budget: MAX_ALIAS_NODES,
            documents: 0,
            problems: Vec::new(),
            aborted: false,
        }
    }

    fn span(&self, s: &saphyr_parser::Span) -> Span {
        let start = self.conv.byte(&s.start);
        let end = self.conv.byte(&s.end).max(start);
        Span::new(start, end)
    }

    fn abort(&mut self, p: LoadProblem) {
        self.problems.push(p);
        self.aborted = true;
        self.stack.clear();
        self.anchors.clear();
    }

    fn scalar(
        &mut self,
        v: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<&Cow<'_, Tag>>,
        span: Span,
    ) -> Node {
        if let Some(t) = tag
            && !t.is_yaml_core_schema()
        {
            self.problems.push(LoadProblem {
                code: codes::UNSUPPORTED_TAG,
                span,
                label: "custom tag".into(),
                message: format!(
                    "YAML tag `{}{}` is not supported in plans",
                    t.handle, t.suffix
                ),
                help: Some("remove the tag; write the value as plain text".into()),
                related: None,
            });
            return Node {
                span,
                kind: Kind::Str(v.into_owned()),
            };
        }
        let text = v.to_string();
        let kind = match Scalar::parse_from_cow_and_metadata(v, style, tag) {
            Some(Scalar::Null) => Kind::Null,
            Some(Scalar::Boolean(b)) => Kind::Bool(b),
            Some(Scalar::Integer(i)) => Kind::Int(i),
            Some(Scalar::FloatingPoint(f)) => Kind::Float(f.into_inner(), text),
            Some(Scalar::String(s)) => Kind::Str(s.into_owned()),
            None => {
                self.problems.push(LoadProblem {
                    code: codes::UNSUPPORTED_TAG,
                    span,
                    label: "does not match its tag".into(),
                    message: "this value does not match its YAML tag".into(),
                    help: Some("remove the tag or fix the value".into()),
                    related: None,
                });
                Kind::Str(text)
            }
        };
        Node { span, kind }
    }

    /// Places a finished node into its parent (or as the document root).
    fn insert(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let size = node.count();
            let depth = node.depth();
            self.anchors.insert(anchor, (node.clone(), size, depth));
        }
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        match top {
            Frame::Seq { items, .. } => items.push(node),
            Frame::Map {
                entries,
                pending_key,
                skip_value,
                ..
            } => match pending_key.take() {
                None if *skip_value => *skip_value = false,
                Some(_) if *skip_value => *skip_value = false,
                Some((k, kspan)) => entries.push((k, kspan, node)),
                None => {
                    // This node is a key.
                    let key = match &node.kind {
                        Kind::Str(s) => Some(s.clone()),
                        Kind::Int(i) => Some(i.to_string()),
                        Kind::Float(_, t) => Some(t.clone()),
                        Kind::Bool(b) => Some(b.to_string()),
                        Kind::Null => Some(String::new()),
                        Kind::Seq(_) | Kind::Map(_) => None,
                    };
                    match key {
                        None => {
                            *skip_value = true;
                            *pending_key = None;
                            self.problems.push(LoadProblem {
                                code: codes::COMPLEX_KEY,
                                span: node.span,
                                label: "not a plain key".into(),
                                message: "mapping keys must be plain text, not a list or mapping"
                                    .into(),
                                help: Some("write `key: value` with a simple word as key".into()),
                                related: None,
                            });
                        }
                        Some(k) => {
                            if let Some((_, first, _)) = entries.iter().find(|(ek, _, _)| *ek == k)
                            {
                                let first = *first;
                                *skip_value = true;
                                let shown = shorten(&k);
                                self.problems.push(LoadProblem {
                                    code: codes::DUPLICATE_KEY,
                                    span: node.span,
                                    label: "second definition".into(),
                                    message: format!(
                                        "key `{shown}` appears twice in the same mapping"
                                    ),
                                    help: Some(
                                        "keep only one; swing does not guess which one you meant"
                                            .into(),
                                    ),
                                    related: Some((first, "first defined here".into())),
                                });
                                // Mark as pending so the value is consumed and dropped.
                                *pending_key = Some((k, node.span));
                            } else {
                                *pending_key = Some((k, node.span));
                            }
                        }
                    }
                }
            },
        }
        // A duplicate key sets skip_value *and* pending_key: the next node is its value and is
        // dropped by the `Some(_) if *skip_value` arm above.
    }

    fn check_depth(&mut self, extra: usize, span: Span) -> bool {
        if self.stack.len() + extra > MAX_DEPTH {
            self.abort(LoadProblem {
                code: codes::TOO_DEEP,
                span,
                label: "too deep".into(),
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
                help: Some(
                    "a plan needs only a few levels of nesting; is this the right file?".into(),
                ),
                related: None,
            });
            return false;
        }
        true
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        let mut t: String = s.chars().take(40).collect();
        t.push('…');
        t
    } else {
        s.to_owned()
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder<'_, '_> {
    fn on_event(&mut self, ev: Event<'input>, span: saphyr_parser::Span) {
        if self.aborted {
            return;
        }
        let sp = self.span(&span);
        match ev {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.abort(LoadProblem {
                        code: codes::MULTIPLE_DOCUMENTS,
                        span: Span::new(
                            sp.start,
                            next_char_end(self.conv.text, sp.start).max(sp.end),
                        ),
                        label: "second document starts here".into(),
                        message: "a plan file holds exactly one YAML document".into(),
                        help: Some(
                            "remove the `---` separator, or split the plans into separate files"
                                .into(),
                        ),
                        related: None,
                    });
                }
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_tag(tag.as_ref(), sp);
                if self.check_depth(1, sp) {
                    self.stack.push(Frame::Seq {
                        start: sp.start,
                        anchor,
                        items: Vec::new(),
                    });
                }
            }
            Event::MappingStart(anchor, tag) => {
                self.check_tag(tag.as_ref(), sp);
                if self.check_depth(1, sp) {
                    self.stack.push(Frame::Map {
                        start: sp.start,
                        anchor,
                        entries: Vec::new(),
                        pending_key: None,
                        skip_value: false,
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return;
                };
                let (node, anchor) = match frame {
                    Frame::Seq {
                        start,
                        anchor,
                        items,
                    } => (
                        Node {
                            span: Span::new(start, sp.start.max(start)),
                            kind: Kind::Seq(items),
                        },
                        anchor,
                    ),
                    Frame::Map {
                        start,
                        anchor,
                        entries,
                        ..
                    } => (
                        Node {
                            span: Span::new(start, sp.start.max(start)),
                            kind: Kind::Map(entries),
                        },
                        anchor,
                    ),
                };
                self.insert(node, anchor);
            }
            Event::Scalar(v, style, anchor, tag) => {
                let node = self.scalar(v, style, tag.as_ref(), sp);
                self.insert(node, anchor);
            }
            Event::Alias(id) => {
                let Some((node, size, depth)) = self.anchors.get(&id).cloned() else {
                    self.abort(LoadProblem {
                        code: codes::SYNTAX,
                        span: sp,
                        label: "unknown alias".into(),
                        message: "this alias refers to no anchor defined before it".into(),
                        help: Some("define `&name` before using `*name`".into()),
                        related: None,
                    });
                    return;
                };
                if size > self.alias_budget {
                    self.abort(LoadProblem {
                        code: codes::ALIAS_LIMIT,
                        span: sp,
                        label: "expansion stops here".into(),
                        message: format!(
                            "aliases (`*name`) would expand to more than {MAX_ALIAS_NODES} nodes"
                        ),
                        help: Some(
                            "a plan never needs this many repeated nodes; write them out or remove the aliases"
                                .into(),
                        ),
                        related: None,
                    });
                    return;
                }
                self.alias_budget -= size;
                if !self.check_depth(depth, sp) {
                    return;
                }
                let mut node = node;
                // Point at the alias itself, not at the anchor.
                node.span = sp;
                self.insert(node, 0);
            }
        }
    }
}

impl Builder<'_, '_> {
    fn check_tag(&mut self, tag: Option<&Cow<'_, Tag>>, sp: Span) {
        if let Some(t) = tag
            && !t.is_yaml_core_schema()
        {
            self.problems.push(LoadProblem {
                code: codes::UNSUPPORTED_TAG,
                span: sp,
                label: "custom tag".into(),
                message: format!(
                    "YAML tag `{}{}` is not supported in plans",
                    t.handle, t.suffix
                ),
                help: Some("remove the tag".into()),
                related: None,
            });
        }
    }
}

/// Converts the node tree into JSON, recording spans by pointer.
fn to_json(node: Node, pointer: String, key: Option<Span>, spans: &mut SpanIndex) -> Value {
    let mut plain_number_text = None;
    let value = match node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(b),
        Kind::Int(i) => {
            plain_number_text = Some(i.to_string());
            Value::Number(i.into())
        }
        Kind::Float(f, text) => {
            let v = Number::from_f64(f).map_or_else(|| Value::String(text.clone()), Value::Number);
            plain_number_text = Some(text);
            v
        }
        Kind::Str(s) => Value::String(s),
        Kind::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                out.push(to_json(item, format!("{pointer}/{i}"), None, spans));
            }
            Value::Array(out)
        }
        Kind::Map(entries) => {
            let mut out = Map::new();
            for (k, kspan, v) in entries {
                let child = format!("{pointer}/{}", escape_pointer_segment(&k));
                let jv = to_json(v, child, Some(kspan), spans);
                out.insert(k, jv);
            }
            Value::Object(out)
        }
    };
    spans.map.insert(
        pointer,
        NodeSpans {
            key,
            value: node.span,
            plain_number_text,
        },
    );
    value
}

/// Escapes one JSON-pointer segment (`~` → `~0`, `/` → `~1`).
pub fn escape_pointer_segment(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Reverses [`escape_pointer_segment`].
pub fn unescape_pointer_segment(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}
