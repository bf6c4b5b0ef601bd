//! Query shape limits, checked on the parsed document before validation or any resolver
//! runs: the number of fields a query selects once its fragments are expanded
//! (`MAX_FIELDS`), and the number of aliases (`MAX_ALIASES`). A "fragment bomb" — fragments
//! that each spread the previous one twice — expands exponentially; the count below is
//! memoised per fragment and saturates, so it takes time and memory linear in the document
//! (itself at most `MAX_BODY_BYTES`) whatever the expansion would be.

use std::collections::HashMap;

use async_graphql::Name;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use super::bounds::{MAX_ALIASES, MAX_FIELDS};

/// Fields and aliases of a selection set with its fragments expanded.
#[derive(Clone, Copy, Default)]
struct Count {
    fields: u64,
    aliases: u64,
}

impl Count {
    fn add(self, other: Count) -> Count {
        Count {
            fields: self.fields.saturating_add(other.fields),
            aliases: self.aliases.saturating_add(other.aliases),
        }
    }
}

struct Counter<'a> {
    doc: &'a ExecutableDocument,
    /// Fragments already counted; `None` while one is being counted (a cycle, which
    /// validation refuses with its own message, counts as nothing here).
    memo: HashMap<&'a Name, Option<Count>>,
}

impl<'a> Counter<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Count {
        let mut total = Count::default();
        for item in &set.items {
            let c = match &item.node {
                Selection::Field(f) => Count {
                    fields: 1,
                    aliases: u64::from(f.node.alias.is_some()),
                }
                .add(self.selection_set(&f.node.selection_set.node)),
                Selection::InlineFragment(i) => self.selection_set(&i.node.selection_set.node),
                Selection::FragmentSpread(s) => self.fragment(&s.node.fragment_name.node),
            };
            total = total.add(c);
        }
        total
    }

    fn fragment(&mut self, name: &'a Name) -> Count {
        match self.memo.get(name) {
            Some(Some(c)) => return *c,
            Some(None) => return Count::default(),
            None => {}
        }
        // An unknown fragment is validation's to report.
        let Some(def) = self.doc.fragments.get(name) else {
            return Count::default();
        };
        self.memo.insert(name, None);
        let c = self.selection_set(&def.node.selection_set.node);
        self.memo.insert(name, Some(c));
        c
    }
}

/// The shape of the document's largest operation, or the limit it breaks.
pub(super) fn check(doc: &ExecutableDocument) -> Result<(), String> {
    let mut counter = Counter {
        doc,
        memo: HashMap::new(),
    };
    for (_, op) in doc.operations.iter() {
        let c = counter.selection_set(&op.node.selection_set.node);
        if c.fields > MAX_FIELDS {
            return Err(format!(
                "the query selects more than {MAX_FIELDS} fields once its fragments are \
                 expanded ({})",
                if c.fields == u64::MAX {
                    "too many to count".to_owned()
                } else {
                    c.fields.to_string()
                }
            ));
        }
        if c.aliases > MAX_ALIASES {
            return Err(format!(
                "the query uses more than {MAX_ALIASES} aliases ({})",
                c.aliases
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(q: &str) -> Result<(), String> {
        check(&async_graphql::parser::parse_query(q).unwrap())
    }

    #[test]
    fn fragment_bomb_is_counted_without_expanding() {
        let mut q = String::from("fragment F0 on Query { a b }\n");
        for i in 1..64 {
            q.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                i - 1,
                i - 1
            ));
        }
        q.push_str("{ ...F63 }");
        let e = shape(&q).unwrap_err();
        assert!(e.contains("fields"), "{e}");
    }

    #[test]
    fn aliases_and_cycles() {
        let many: String = (0..MAX_ALIASES + 1).map(|i| format!("a{i}: x ")).collect();
        assert!(
            shape(&format!("{{ {many} }}"))
                .unwrap_err()
                .contains("aliases")
        );
        let few: String = (0..MAX_ALIASES).map(|i| format!("a{i}: x ")).collect();
        assert!(shape(&format!("{{ {few} }}")).is_ok());
        // A cycle is left to validation.
        assert!(shape("fragment A on Q { ...B } fragment B on Q { ...A x } { ...A }").is_ok());
    }
}
