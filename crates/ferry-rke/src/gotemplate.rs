//! Which variables a Go `text/template` body renders, and under which `if` conditions: enough
//! of the template language to read KDM's addon templates (`K8sVersionedTemplates.templateKeys`)
//! without executing them.
//!
//! It reads actions between `{{` and `}}` with their trim markers (`{{- ` and ` -}}`),
//! comments (`{{/* … */}}`, which may contain `}}`), quoted, raw and character strings, and
//! the nesting of `if` / `else if` / `else` / `range` / `with` / `define` / `block` up to
//! `end`. Only rendered actions count: a variable that appears only in an `if` argument is
//! not rendered, nor is one in a declaration (`$x := .Foo`). A reference counts when its dot
//! is the template's root: `$.Var` anywhere, `.Var` outside the main branch of a `range` or
//! `with` (where the dot is the element). A variable is unconditional if any rendered
//! reference has no enclosing condition; otherwise it is rendered under the alternatives
//! (OR) of its references' enclosing conditions (AND), each the raw `if` pipeline text, with
//! `not (…)` for an `else` branch.

use std::collections::BTreeMap;

/// When a variable is rendered: alternatives (OR) of conditions that must all hold (AND).
/// An empty alternative means always.
pub type When = Vec<Vec<String>>;

/// Why a template body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// `{{` without `}}`.
    #[error("unclosed action starting at byte {0}")]
    Unclosed(usize),
    /// A comment not ended by `*/}}`.
    #[error("unclosed comment starting at byte {0}")]
    UnclosedComment(usize),
    /// An `else` or `end` with nothing open, or an action left open at the end.
    #[error("unbalanced {0}")]
    Unbalanced(&'static str),
    /// Deeper than [`MAX_DEPTH`].
    #[error("nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// The deepest nesting read (real templates nest 4 deep).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug)]
struct Block {
    /// Conditions of the branch being read (empty: none).
    conds: Vec<String>,
    /// The dot is the root in this branch.
    rooted: bool,
    /// For if-chains: the conditions seen so far, negated in later branches.
    chain: Vec<String>,
    kind: Kind,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Kind {
    If,
    Scope,
    Define,
}

/// Scans `body`: every rendered root variable (filtered by `keep`) and when it is rendered.
pub fn scan(body: &str, keep: &dyn Fn(&str) -> bool) -> Result<BTreeMap<String, When>, ScanError> {
    let mut out: BTreeMap<String, When> = BTreeMap::new();
    let mut stack: Vec<Block> = Vec::new();
    let b = body.as_bytes();
    let mut i = 0;
    while let Some(off) = body[i..].find("{{") {
        let start = i + off;
        let mut j = start + 2;
        // Left trim marker: "{{- " (a '-' followed by space), else "-3" is a number.
        if b.get(j) == Some(&b'-') && b.get(j + 1).is_some_and(|c| c.is_ascii_whitespace()) {
            j += 2;
        }
        while b.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
            j += 1;
        }
        if body[j..].starts_with("/*") {
            let end = find_comment_end(body, j + 2).ok_or(ScanError::UnclosedComment(start))?;
            i = end;
            continue;
        }
        let close = find_close(body, j).ok_or(ScanError::Unclosed(start))?;
        let mut text = body[j..close].trim_end();
        if text.ends_with(" -") || text == "-" {
            text = text[..text.len() - 1].trim_end();
        }
        i = close + 2;
        action(text, &mut stack, &mut out, keep)?;
    }
    if !stack.is_empty() {
        return Err(ScanError::Unbalanced("action: missing {{end}}"));
    }
    Ok(out)
}

/// The index just past `*/` + optional trim marker + `}}`.
fn find_comment_end(body: &str, from: usize) -> Option<usize> {
    let mut k = from;
    while let Some(off) = body[k..].find("*/") {
        let after = k + off + 2;
        let rest = &body[after..];
        let trimmed = rest.trim_start();
        let t = trimmed
            .strip_prefix('-')
            .map(str::trim_start)
            .unwrap_or(trimmed);
        if let Some(r) = t.strip_prefix("}}") {
            return Some(body.len() - r.len());
        }
        if rest.starts_with("}}") {
            return Some(after + 2);
        }
        k = after;
    }
    None
}

/// Where the Go string starting at `b[k]` (`"…"` or `'…'` with backslash escapes, or a raw
/// `` `…` ``) ends: the index of its closing quote, or past the end when it is unterminated.
fn string_end(b: &[u8], mut k: usize) -> usize {
    let q = b[k];
    k += 1;
    while k < b.len() && b[k] != q {
        if q != b'`' && b[k] == b'\\' {
            k += 1;
        }
        k += 1;
    }
    k
}

/// The index of the `}}` closing an action that starts at `from`, skipping strings.
fn find_close(body: &str, from: usize) -> Option<usize> {
    let b = body.as_bytes();
    let mut k = from;
    while k < b.len() {
        match b[k] {
            b'"' | b'\'' | b'`' => k = string_end(b, k),
            b'}' if b.get(k + 1) == Some(&b'}') => return Some(k),
            _ => {}
        }
        k += 1;
    }
    None
}

fn first_word(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(text.len());
    (&text[..end], text[end..].trim())
}

fn current(stack: &[Block]) -> (Vec<String>, bool) {
    let mut conds = Vec::new();
    let mut rooted = true;
    for b in stack {
        conds.extend(b.conds.iter().cloned());
        rooted = b.rooted;
        if b.kind == Kind::Define {
            rooted = false;
        }
    }
    (conds, rooted)
}

fn action(
    text: &str,
    stack: &mut Vec<Block>,
    out: &mut BTreeMap<String, When>,
    keep: &dyn Fn(&str) -> bool,
) -> Result<(), ScanError> {
    let (word, rest) = first_word(text);
    let parent_rooted = current(stack).1;
    let push = |stack: &mut Vec<Block>, b: Block| {
        if stack.len() >= MAX_DEPTH {
            return Err(ScanError::TooDeep);
        }
        stack.push(b);
        Ok(())
    };
    match word {
        "if" => push(
            stack,
            Block {
                conds: vec![rest.to_string()],
                rooted: parent_rooted,
                chain: vec![rest.to_string()],
                kind: Kind::If,
            },
        )?,
        "range" | "with" => push(
            stack,
            Block {
                conds: Vec::new(),
                rooted: false,
                chain: Vec::new(),
                kind: Kind::Scope,
            },
        )?,
        "define" => push(
            stack,
            Block {
                conds: Vec::new(),
                rooted: false,
                chain: Vec::new(),
                kind: Kind::Define,
            },
        )?,
        "block" => push(
            stack,
            Block {
                conds: Vec::new(),
                rooted: true,
                chain: Vec::new(),
                kind: Kind::Scope,
            },
        )?,
        "else" => {
            let Some(top) = stack.last_mut() else {
                return Err(ScanError::Unbalanced("{{else}}"));
            };
            match top.kind {
                Kind::If => {
                    let mut conds: Vec<String> =
                        top.chain.iter().map(|c| format!("not ({c})")).collect();
                    let (w, r) = first_word(rest);
                    if w == "if" {
                        conds.push(r.to_string());
                        top.chain.push(r.to_string());
                    }
                    top.conds = conds;
                }
                // The else branch of range/with runs with the enclosing dot.
                Kind::Scope | Kind::Define => {
                    let len = stack.len();
                    let outer = current(&stack[..len - 1]).1;
                    if let Some(top) = stack.last_mut() {
                        top.rooted = outer;
                    }
                }
            }
        }
        "end" => {
            stack.pop().ok_or(ScanError::Unbalanced("{{end}}"))?;
        }
        "template" | "break" | "continue" => {}
        _ => {
            if is_declaration(text) {
                return Ok(());
            }
            let (conds, rooted) = current(stack);
            for (var, dollar) in references(text) {
                if !(dollar || rooted) || !keep(&var) {
                    continue;
                }
                let when = out.entry(var).or_insert_with(|| vec![conds.clone()]);
                if conds.is_empty() {
                    *when = vec![Vec::new()];
                } else if !when.iter().any(Vec::is_empty) && !when.contains(&conds) {
                    when.push(conds.clone());
                }
            }
        }
    }
    Ok(())
}

/// `$x := …` or `$x = …` (outside strings): prints nothing.
fn is_declaration(text: &str) -> bool {
    let t = text.trim_start();
    if !t.starts_with('$') {
        return false;
    }
    let rest = t.trim_start_matches(|c: char| {
        c == '$' || c.is_alphanumeric() || c == '_' || c == ',' || c == ' '
    });
    rest.starts_with(":=") || (rest.starts_with('=') && !rest.starts_with("=="))
}

/// The root references of an action: `.Name` (false) and `$.Name` (true), outside strings.
fn references(text: &str) -> Vec<(String, bool)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut k = 0;
    while k < b.len() {
        match b[k] {
            b'"' | b'\'' | b'`' => k = string_end(b, k),
            b'.' => {
                let prev = if k == 0 { b' ' } else { b[k - 1] };
                let chained = prev.is_ascii_alphanumeric() || prev == b'_' || prev == b')';
                let dollar = prev == b'$'
                    && (k < 2 || !(b[k - 2].is_ascii_alphanumeric() || b[k - 2] == b'_'));
                if !chained && (prev != b'$' || dollar) {
                    let name: String = text[k + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if name
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    {
                        k += name.len();
                        out.push((name, dollar));
                    }
                }
            }
            _ => {}
        }
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests;
