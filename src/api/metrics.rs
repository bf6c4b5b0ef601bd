//! GraphQL request metrics: every request is timed by the GraphQL handler (`api::graphql`)
//! and labelled by operation — its type and root fields (`query home`, `mutation
//! recordEvents`), never the client's free-text operation name. Root fields the schema does
//! not have make the label `invalid`, so the label set stays bounded by the schema.
//!
//! Not an async-graphql extension on purpose: with any extension registered, async-graphql
//! runs every field of every response through the extension chain, which cost more than a
//! whole page's filters and rerank (measured with callgrind; README, "Performance"). The label
//! comes from a small scan of the query text instead of a second parse.

use std::collections::HashSet;
use std::sync::LazyLock;

use async_graphql::parser::types::{ServiceDocument, TypeKind, TypeSystemDefinition};

/// Root fields named in a label, at most; more become `…`.
const MAX_LABEL_FIELDS: usize = 4;

/// The label of requests that do not name a known operation.
pub const INVALID: &str = "invalid";

/// `query:<field>` and `mutation:<field>` for every root field of the schema.
static ROOT_FIELDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let sdl = super::sdl();
    let Ok(doc) = async_graphql::parser::parse_schema(&sdl) else {
        return HashSet::new();
    };
    root_fields(&doc)
});

fn root_fields(doc: &ServiceDocument) -> HashSet<String> {
    let mut out = HashSet::new();
    for def in &doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let kind = match t.node.name.node.as_str() {
            "Query" | "QueryRoot" => "query",
            "Mutation" | "MutationRoot" => "mutation",
            _ => continue,
        };
        if let TypeKind::Object(o) = &t.node.kind {
            for f in &o.fields {
                out.insert(format!("{kind}:{}", f.node.name.node));
            }
        }
    }
    out
}

/// `query home`, `query profiles,titles`, `mutation recordEvents`: the chosen operation's type
/// and its root fields, sorted; `invalid` when the text names no operation or a root field the
/// schema does not have.
pub fn operation_label(query: &str, operation_name: Option<&str>) -> String {
    label_with(query, operation_name, &|kind, field| {
        field == "__typename"
            || field == "__schema"
            || field == "__type"
            || ROOT_FIELDS.contains(&format!("{kind}:{field}"))
    })
}

fn label_with(
    query: &str,
    operation_name: Option<&str>,
    known: &dyn Fn(&str, &str) -> bool,
) -> String {
    let Some((kind, mut fields)) = root_selection(query, operation_name) else {
        return INVALID.to_owned();
    };
    if fields
        .iter()
        .any(|f| *f != SPREAD && !known(kind, f.as_str()))
    {
        return INVALID.to_owned();
    }
    fields.sort_unstable();
    fields.dedup();
    if fields.len() > MAX_LABEL_FIELDS {
        fields.truncate(MAX_LABEL_FIELDS);
        fields.push(SPREAD.to_owned());
    }
    format!("{kind} {}", fields.join(","))
}

/// What a fragment spread or inline fragment at the root is labelled as.
const SPREAD: &str = "…";

#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    Name(&'a str),
    Punct(char),
    Spread,
}

/// GraphQL's lexical tokens, without values' insides: strings, comments, commas and
/// whitespace are skipped (numbers come out as names, which the scan never mistakes for a
/// field: they only occur inside arguments).
fn tokens(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                if text[i..].starts_with("\"\"\"") {
                    i += 3;
                    while i < bytes.len() && !text[i..].starts_with("\"\"\"") {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 3;
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
            }
            b'.' if text[i..].starts_with("...") => {
                out.push(Token::Spread);
                i += 3;
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'+')
                {
                    i += 1;
                }
                out.push(Token::Name(&text[start..i]));
            }
            b'{' | b'}' | b'(' | b')' | b'[' | b']' | b':' | b'@' | b'$' | b'=' | b'!' | b'|'
            | b'&' => {
                out.push(Token::Punct(c as char));
                i += 1;
            }
            _ => i += 1, // whitespace, commas, anything else
        }
    }
    out
}

/// The type and root field names (aliases resolved) of the operation `name` picks, or of the
/// only operation.
fn root_selection(query: &str, name: Option<&str>) -> Option<(&'static str, Vec<String>)> {
    let tokens = tokens(query);
    let mut i = 0;
    let mut found: Vec<(Option<&str>, &'static str, Vec<String>)> = Vec::new();
    while i < tokens.len() {
        // An operation or fragment definition at depth 0.
        let (kind, op_name) = match &tokens[i] {
            Token::Punct('{') => ("query", None),
            Token::Name("query") | Token::Name("mutation") | Token::Name("subscription") => {
                let kind = match tokens[i] {
                    Token::Name("mutation") => "mutation",
                    Token::Name("subscription") => "subscription",
                    _ => "query",
                };
                let op_name = match tokens.get(i + 1) {
                    Some(Token::Name(n)) => Some(*n),
                    _ => None,
                };
                // Skip to the selection set (past variables and directives).
                let mut parens = 0;
                while i < tokens.len() {
                    match tokens[i] {
                        Token::Punct('(') => parens += 1,
                        Token::Punct(')') => parens -= 1,
                        Token::Punct('{') if parens == 0 => break,
                        _ => {}
                    }
                    i += 1;
                }
                (kind, op_name)
            }
            Token::Name("fragment") => {
                while i < tokens.len() && tokens[i] != Token::Punct('{') {
                    i += 1;
                }
                i = skip_block(&tokens, i);
                continue;
            }
            _ => return None,
        };
        if i >= tokens.len() {
            return None;
        }
        let (fields, end) = root_fields_of(&tokens, i)?;
        found.push((op_name, kind, fields));
        i = end;
    }
    let (_, kind, fields) = match name {
        Some(n) => found.into_iter().find(|(o, _, _)| *o == Some(n))?,
        None if found.len() == 1 => found.pop()?,
        None => return None,
    };
    Some((kind, fields))
}

/// Index just past the block opening at `open` (a `{`).
fn skip_block(tokens: &[Token<'_>], open: usize) -> usize {
    let mut depth = 0;
    let mut i = open;
    while i < tokens.len() {
        match tokens[i] {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// The field names of the selection set opening at `open`, and the index past it.
fn root_fields_of(tokens: &[Token<'_>], open: usize) -> Option<(Vec<String>, usize)> {
    let mut fields = Vec::new();
    let mut i = open + 1;
    // Where a field name may begin (at the start and after a field's name, arguments,
    // directives or sub-selection).
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('}') => return Some((fields, i + 1)),
            Token::Spread => {
                fields.push(SPREAD.to_owned());
                i += 1;
                // `... Name`, `... on Type { }`, `... { }`, each maybe with directives.
                match tokens.get(i) {
                    Some(Token::Name("on")) => i += 2,
                    Some(Token::Name(_)) => i += 1,
                    _ => {}
                }
                loop {
                    match tokens.get(i) {
                        Some(Token::Punct('(')) => i = skip_parens(tokens, i),
                        Some(Token::Punct('@')) => i += 2,
                        Some(Token::Punct('{')) => {
                            i = skip_block(tokens, i);
                            break;
                        }
                        _ => break,
                    }
                }
            }
            Token::Name(first) => {
                // `alias: field` or `field`.
                let field = if tokens.get(i + 1) == Some(&Token::Punct(':')) {
                    i += 2;
                    match tokens.get(i) {
                        Some(Token::Name(f)) => *f,
                        _ => return None,
                    }
                } else {
                    first
                };
                fields.push(field.to_owned());
                i += 1;
                // Arguments, directives (with arguments), sub-selection.
                loop {
                    match tokens.get(i) {
                        Some(Token::Punct('(')) => i = skip_parens(tokens, i),
                        Some(Token::Punct('@')) => i += 2,
                        Some(Token::Punct('{')) => {
                            i = skip_block(tokens, i);
                            break;
                        }
                        _ => break,
                    }
                }
            }
            _ => return None,
        }
    }
    None
}

/// Index just past the parenthesis group opening at `open`.
fn skip_parens(tokens: &[Token<'_>], open: usize) -> usize {
    let mut depth = 0;
    let mut i = open;
    while i < tokens.len() {
        match tokens[i] {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(query: &str, name: Option<&str>) -> String {
        label_with(query, name, &|_, f| f != "nosuchfield")
    }

    #[test]
    fn labels_by_type_and_root_fields() {
        assert_eq!(
            label("{ home(profileId: 1) { requestId } }", None),
            "query home"
        );
        assert_eq!(
            label(
                "query A($p: ID!, $n: Int = 3) @x { titles(first: $n) { id } profiles { id } t2: titles { name } }",
                None
            ),
            "query profiles,titles"
        );
        assert_eq!(
            label(
                "query A { titles { id } } mutation B { recordEvents(e: [{a: \"}{\"}]) { accepted } }",
                Some("B")
            ),
            "mutation recordEvents"
        );
        assert_eq!(
            label(
                "# a comment { x }\n{ \"\"\"doc\"\"\" a: home b: home }",
                None
            ),
            "query home"
        );
        assert_eq!(
            label(
                "{ ...F x @include(if: true) } fragment F on Query { y }",
                None
            ),
            "query x,…"
        );
        assert_eq!(label("{ a b c d e f }", None), "query a,b,c,d,…");
        assert_eq!(label("query A { a } query B { b }", None), INVALID);
        assert_eq!(label("{ nosuchfield }", None), INVALID);
        assert_eq!(label("not graphql", None), INVALID);
        assert_eq!(label("{ a(", None), INVALID);
    }

    #[test]
    fn knows_the_schema_root_fields() {
        assert_eq!(
            operation_label("{ home(profileId: 1) { requestId } }", None),
            "query home"
        );
        assert_eq!(
            operation_label(
                "mutation { recordEvents(profileId: 1, events: []) { accepted } }",
                None
            ),
            "mutation recordEvents"
        );
        assert_eq!(operation_label("{ madeUp }", None), INVALID);
    }
}
