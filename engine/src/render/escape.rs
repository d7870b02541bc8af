//! The one place user and plan text is made safe for the medium it is written into: Markdown
//! and HTML inline text, Markdown code spans, HTML comments, Mermaid labels and names, DOT
//! strings, and the terminal. Every renderer (and every view of the binary that prints text
//! it did not write itself — plan strings, exec stderr, vendor error text) passes each such
//! string through the function for its medium.
//!
//! Plan strings are data, never markup: after escaping, a plan string cannot open or close a
//! `<details>` block, start a heading, a list or a table row, inject HTML, end a code fence,
//! add a line to a Mermaid chart, or send an escape sequence to a terminal.
//!
//! Must not: decide what is shown, or escape text swing writes itself (its own Markdown, its
//! own colours) — only the strings that come from a plan, an appliance or a command.

/// Inline Markdown/HTML text (a paragraph, a list item, a table cell, bold text): one line,
/// `<`, `>` and `&` as entities, every Markdown structure character backslash-escaped, so the
/// text renders as exactly the characters it holds.
pub fn md_inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    // Leading blanks would make an indented code block at a line start.
    for c in one_line(s).trim_start().chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // Emphasis, code, links, images, tables, strike-through, math and the escape
            // character itself: structure anywhere in a line.
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            // Headings, list items and setext underlines: structure at the start only.
            '#' | '-' | '+' | '=' if out.is_empty() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    // An ordered-list marker (1–9 digits, `.` or `)`, then a blank or the end) is only
    // structure at the very start; `10.0.0.11` is not one.
    if let Some(end) = out.find(|c: char| !c.is_ascii_digit())
        && (1..=9).contains(&end)
        && matches!(out.as_bytes()[end], b'.' | b')')
        && matches!(out.as_bytes().get(end + 1), None | Some(b' ' | b'\t'))
    {
        out.insert(end, '\\');
    }
    out
}

/// A Markdown code span holding `s` verbatim: the fence is one backtick longer than the
/// longest run inside, padded so a leading or trailing backtick cannot merge with it.
///
/// `|` is written `\|`: GitHub splits table cells at a pipe even inside a code span (and shows
/// `\|` as `|` there), so a plan string in a table cell cannot end its cell and leave the rest
/// of the string outside the span.
pub fn md_code(s: &str) -> String {
    let s = one_line(s).replace('|', "\\|");
    let fence = "`".repeat(longest_run(&s) + 1);
    if s.starts_with('`') || s.ends_with('`') || (s.starts_with(' ') && s.ends_with(' ')) {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

fn longest_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// One line inside a fenced code block (` ```diff `): control characters and line breaks
/// become spaces, so the text can neither end the fence nor add lines to it.
pub fn md_fenced_line(s: &str) -> String {
    one_line(s).into_owned()
}

/// A value inside an HTML comment (`<!-- … -->`): `-`, `<`, `>`, `&`, `"` and spaces are
/// percent-encoded so the value can neither close the comment nor break a `key=value` pair.
pub fn html_comment_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        match c {
            '-' | '<' | '>' | '&' | '"' | '%' | ' ' | '=' | '!' => {
                out.push_str(&format!("%{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Text inside a quoted Mermaid label (`["…"]`): one line, and every character Mermaid or the
/// HTML it renders to reads as syntax written with Mermaid's entity codes (`#quot;`, `#35;`).
pub fn mermaid_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in one_line(s).chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' | ';' | '&' | '[' | ']' | '{' | '}' | '(' | ')' | '|' | '`' | '%' => {
                out.push_str(&format!("#{};", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Unquoted Mermaid text (a Gantt title, section or task name): one line, without the
/// characters Mermaid reads as syntax or markup there (`:`, `#`, `;`, `%`, `"`, `<`, `>`),
/// which become spaces.
pub fn mermaid_text(s: &str) -> String {
    one_line(s).replace([':', '#', ';', '%', '"', '<', '>'], " ")
}

/// A quoted DOT string: `"` and `\` escaped, line breaks as DOT's `\n`, other control
/// characters dropped.
pub fn dot_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for the terminal: escape sequences (CSI, OSC, DCS and the other `ESC` forms) removed
/// whole, every other C0/C1 control character except line feed and tab removed. Apply it to
/// text swing did not write before adding swing's own colours.
pub fn terminal(s: &str) -> String {
    strip_terminal(s, false)
}

/// Like [`terminal`], but keeps SGR colour sequences (`ESC [ digits ; … m`): for text that a
/// library has already coloured (miette's reports). Every other sequence is still removed.
pub fn terminal_keep_colour(s: &str) -> String {
    strip_terminal(s, true)
}

/// [`terminal`] on one line: line breaks also become spaces.
pub fn terminal_line(s: &str) -> String {
    terminal(s).replace(['\n', '\t'], " ")
}

fn strip_terminal(s: &str, keep_sgr: bool) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.char_indices().peekable();
    while let Some((start, c)) = it.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\u{1b}' => match it.peek().map(|&(_, n)| n) {
                // CSI: parameters and intermediates, then one final byte 0x40..=0x7e.
                Some('[') => {
                    it.next();
                    let mut end = None;
                    for (i, n) in it.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&n) {
                            end = Some((i, n));
                            break;
                        }
                        if !('\u{20}'..='\u{3f}').contains(&n) {
                            break;
                        }
                    }
                    if let (true, Some((i, 'm'))) = (keep_sgr, end) {
                        let seq = &s[start..=i];
                        if seq[2..seq.len() - 1]
                            .chars()
                            .all(|c| c.is_ascii_digit() || c == ';')
                        {
                            out.push_str(seq);
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (`ESC \`).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    it.next();
                    while let Some((_, n)) = it.next() {
                        if n == '\u{7}' {
                            break;
                        }
                        if n == '\u{1b}' {
                            if it.peek().map(|&(_, m)| m) == Some('\\') {
                                it.next();
                            }
                            break;
                        }
                    }
                }
                // Any other escape: ESC plus one character.
                Some(_) => {
                    it.next();
                }
                None => {}
            },
            // C1 string introducers (8-bit OSC/DCS/…): drop up to the terminator.
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => {
                for (_, n) in it.by_ref() {
                    if n == '\u{7}' || n == '\u{9c}' {
                        break;
                    }
                }
            }
            // 8-bit CSI.
            '\u{9b}' => {
                for (_, n) in it.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&n) || !('\u{20}'..='\u{3f}').contains(&n) {
                        break;
                    }
                }
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The view with every string in it passed through [`terminal_line`]: what the text renderer
/// reads, so no plan string can reach the terminal with a control character, whichever field
/// it sits in (the walk goes over the serialized view, so a new field is covered too).
pub fn terminal_view(view: &swing_schema::output::PlanView) -> swing_schema::output::PlanView {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.chars().any(char::is_control) => {
                *s = terminal_line(s);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            serde_json::Value::Object(o) => o.values_mut().for_each(walk),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::to_value(view) else {
        return view.clone();
    };
    walk(&mut value);
    serde_json::from_value(value).unwrap_or_else(|_| view.clone())
}

/// One line: every control character (line breaks included) becomes a space.
fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(char::is_control) {
        std::borrow::Cow::Owned(
            s.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_inline_text_is_text() {
        assert_eq!(
            md_inline("</details>\n## x <img src=x onerror=alert(1)>"),
            "&lt;/details&gt; ## x &lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(md_inline("a|b"), "a\\|b");
        assert_eq!(md_inline("## x"), "\\## x");
        assert_eq!(md_inline("1. item"), "1\\. item");
        assert_eq!(md_inline("- item"), "\\- item");
        assert_eq!(md_inline("&lt;"), "&amp;lt;");
        assert_eq!(
            md_inline("10.0.0.11:443 a.example.com"),
            "10.0.0.11:443 a.example.com"
        );
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(md_code("a.install"), "`a.install`");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(md_code("a\nb"), "`a b`");
    }

    #[test]
    fn comment_values_cannot_close_the_comment() {
        let v = html_comment_value("x --> <b> y=z");
        assert!(!v.contains("--") && !v.contains('>') && !v.contains(' ') && !v.contains('='));
    }

    #[test]
    fn mermaid_labels_stay_one_quoted_line() {
        let l = mermaid_label("w\"]\n  s9[\"x#;");
        assert!(!l.contains('\n') && !l.contains('"') && !l.contains('[') && !l.contains(']'));
        assert_eq!(mermaid_label("a#b"), "a#35;b");
        assert_eq!(mermaid_text("w: x\n  section y"), "w  x   section y");
    }

    #[test]
    fn terminal_text_loses_every_escape() {
        assert_eq!(terminal("a\u{1b}[2Jb"), "ab");
        assert_eq!(terminal("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(
            terminal("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b"),
            "alinkb"
        );
        assert_eq!(terminal("a\u{9b}31mb\u{9d}x\u{9c}c\rd\u{7}"), "abcd");
        assert_eq!(terminal("line 1\n\tline 2"), "line 1\n\tline 2");
        assert_eq!(terminal_line("a\nb"), "a b");
        assert_eq!(
            terminal_keep_colour("\u{1b}[31mred\u{1b}[0m\u{1b}[2J\u{1b}]0;t\u{7}"),
            "\u{1b}[31mred\u{1b}[0m"
        );
    }
}
