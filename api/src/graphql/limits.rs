//! The shape of a document, measured before async-graphql validates it.
//!
//! async-graphql's validation and complexity analysis walk every fragment
//! spread where it stands, so a document of fragments that each spread the
//! next twice costs 2^n work: a 1 KB query held a worker for seconds. Here
//! each fragment is measured once and its size reused wherever it is spread,
//! so the work is linear in the document's size, and a document whose
//! expansion is too large, too deep or cyclic is refused before any walk
//! that could explode.

use std::collections::HashMap;

use async_graphql::{
    Name, Positioned,
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

/// At most this many bytes of query document (variables are apart, and may
/// fill the body limit): parsing is the one step whose cost grows with the
/// document before anything can refuse it (a 1 MiB document took 40 ms of
/// CPU to parse). The contract's largest document is under 2 KB.
pub const MAX_DOCUMENT_BYTES: usize = 100_000;

/// At most this many fields once every fragment is expanded (aliases count:
/// they are what multiplies work). The contract's largest operation has
/// under 60 and GraphiQL's introspection query a few hundred.
pub const MAX_EXPANDED_FIELDS: u64 = 2_000;
/// At most this deep once fragments are expanded.
pub const MAX_EXPANDED_DEPTH: usize = 32;
/// At most this many fragments and operations in a document, and this many
/// selections written in it: validation walks every definition, used or not
/// (25,000 unused fragments cost 130 ms of CPU).
pub const MAX_DEFINITIONS: usize = 100;
pub const MAX_WRITTEN_SELECTIONS: u64 = 5_000;

/// What a document expands to, and the work it took to find out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Fields, counting each fragment spread as the fields it stands for.
    pub fields: u64,
    /// Nesting of selection sets, fragments expanded.
    pub depth: usize,
}

/// Why a document is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    TooManyDefinitions,
    TooLarge,
    TooDeep,
    /// A fragment spreads itself, directly or not (validation would refuse
    /// it too, but only after walking the cycle).
    Cycle,
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Self::TooManyDefinitions => format!(
                "the query has more than {MAX_DEFINITIONS} fragments and operations, or more than {MAX_WRITTEN_SELECTIONS} selections"
            ),
            Self::TooLarge => format!(
                "the query selects more than {MAX_EXPANDED_FIELDS} fields once its fragments are expanded"
            ),
            Self::TooDeep => format!(
                "the query nests deeper than {MAX_EXPANDED_DEPTH} levels once its fragments are expanded"
            ),
            Self::Cycle => "the query's fragments spread each other in a cycle".into(),
        }
    }
}

/// Measures every operation of `document`; `steps` counts selections
/// visited, which is at most the number of selections written in it.
pub fn measure(document: &ExecutableDocument, steps: &mut u64) -> Result<Shape, Refusal> {
    written(document)?;
    let mut walk = Walk {
        document,
        fragments: HashMap::new(),
        steps,
    };
    let mut total = Shape::default();
    for (_, operation) in document.operations.iter() {
        let shape = walk.selection_set(&operation.node.selection_set)?;
        total.fields = total.fields.saturating_add(shape.fields);
        total.depth = total.depth.max(shape.depth);
        check(total)?;
    }
    Ok(total)
}

/// Refuses a document with too many definitions or written selections, used
/// or not, before anything else walks it.
fn written(document: &ExecutableDocument) -> Result<(), Refusal> {
    fn count(set: &SelectionSet, total: &mut u64) -> Result<(), Refusal> {
        for selection in &set.items {
            *total += 1;
            if *total > MAX_WRITTEN_SELECTIONS {
                return Err(Refusal::TooManyDefinitions);
            }
            match &selection.node {
                Selection::Field(field) => count(&field.node.selection_set.node, total)?,
                Selection::InlineFragment(inline) => count(&inline.node.selection_set.node, total)?,
                Selection::FragmentSpread(_) => {}
            }
        }
        Ok(())
    }
    let operations = document.operations.iter().count();
    if operations + document.fragments.len() > MAX_DEFINITIONS {
        return Err(Refusal::TooManyDefinitions);
    }
    let mut total = 0;
    let sets = document
        .fragments
        .values()
        .map(|fragment| &fragment.node.selection_set)
        .chain(
            document
                .operations
                .iter()
                .map(|(_, op)| &op.node.selection_set),
        );
    for set in sets {
        count(&set.node, &mut total)?;
    }
    Ok(())
}

fn check(shape: Shape) -> Result<Shape, Refusal> {
    if shape.fields > MAX_EXPANDED_FIELDS {
        Err(Refusal::TooLarge)
    } else if shape.depth > MAX_EXPANDED_DEPTH {
        Err(Refusal::TooDeep)
    } else {
        Ok(shape)
    }
}

/// A fragment's measure: `None` while it is being measured (a spread that
/// meets it then is a cycle).
struct Walk<'a, 's> {
    document: &'a ExecutableDocument,
    fragments: HashMap<&'a Name, Option<Shape>>,
    steps: &'s mut u64,
}

impl<'a> Walk<'a, '_> {
    fn selection_set(&mut self, set: &'a Positioned<SelectionSet>) -> Result<Shape, Refusal> {
        let mut shape = Shape::default();
        for selection in &set.node.items {
            *self.steps += 1;
            let inner = match &selection.node {
                Selection::Field(field) => {
                    let below = self.selection_set(&field.node.selection_set)?;
                    Shape {
                        fields: below.fields.saturating_add(1),
                        depth: below.depth,
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node)?
                }
            };
            shape.fields = shape.fields.saturating_add(inner.fields);
            shape.depth = shape.depth.max(inner.depth);
            check(shape)?;
        }
        if !set.node.items.is_empty() {
            shape.depth += 1;
        }
        check(shape)
    }

    fn fragment(&mut self, name: &'a Name) -> Result<Shape, Refusal> {
        match self.fragments.get(name) {
            Some(Some(shape)) => return Ok(*shape),
            Some(None) => return Err(Refusal::Cycle),
            None => {}
        }
        // An unknown fragment is validation's to report; it adds nothing here.
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(Shape::default());
        };
        self.fragments.insert(name, None);
        let shape = self.selection_set(&fragment.node.selection_set)?;
        self.fragments.insert(name, Some(shape));
        Ok(shape)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use async_graphql::parser::parse_query;

    use super::*;

    fn measured(query: &str) -> (Result<Shape, Refusal>, u64) {
        let document = parse_query(query).expect("parses");
        let mut steps = 0;
        (measure(&document, &mut steps), steps)
    }

    /// `levels` fragments, each spreading the next `fan_out` times.
    fn fan_out(levels: usize, fan_out: usize) -> String {
        let mut query = String::from("query { ...F0 }\n");
        for level in 0..levels {
            write!(query, "fragment F{level} on Query {{").unwrap();
            for _ in 0..fan_out {
                write!(query, " ...F{}", level + 1).unwrap();
            }
            query.push_str(" }\n");
        }
        writeln!(query, "fragment F{levels} on Query {{ me {{ id }} }}").unwrap();
        query
    }

    #[test]
    fn a_small_query_is_measured_as_written() {
        let (shape, _) = measured("query { me { id handle } meets { edges { node { id } } } }");
        assert_eq!(
            shape,
            Ok(Shape {
                fields: 7,
                depth: 4
            })
        );
    }

    #[test]
    fn doubling_fragments_are_refused_after_linear_work() {
        let query = fan_out(30, 2);
        let (shape, steps) = measured(&query);
        assert_eq!(shape, Err(Refusal::TooLarge));
        // Each written selection is visited at most once: 2 per fragment.
        assert!(steps <= 2 * 31 + 2, "{steps} steps");
    }

    #[test]
    fn ten_spreads_by_eight_levels_are_refused_after_linear_work() {
        let query = fan_out(8, 10);
        let (shape, steps) = measured(&query);
        assert_eq!(shape, Err(Refusal::TooLarge));
        assert!(steps <= 10 * 9 + 2, "{steps} steps");
    }

    #[test]
    fn a_fragment_spread_many_times_counts_its_fields_each_time() {
        let (shape, _) = measured(&fan_out(3, 10));
        // 10^3 spreads of a fragment of 2 fields.
        assert_eq!(shape.map(|s| s.fields), Ok(2_000));
        let (shape, _) = measured(&fan_out(4, 10));
        assert_eq!(shape, Err(Refusal::TooLarge));
    }

    #[test]
    fn unused_fragments_and_selections_count_too() {
        let mut unused = String::from("query { me { id } }");
        for n in 0..MAX_DEFINITIONS {
            write!(unused, " fragment U{n} on Query {{ me {{ id }} }}").unwrap();
        }
        assert_eq!(measured(&unused).0, Err(Refusal::TooManyDefinitions));
        let wide = format!(
            "query {{ me {{ id }} }} fragment W on Query {{ {} }}",
            "__typename ".repeat(6_000)
        );
        assert_eq!(measured(&wide).0, Err(Refusal::TooManyDefinitions));
    }

    #[test]
    fn cycles_and_depth_are_refused() {
        let (shape, _) =
            measured("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }");
        assert_eq!(shape, Err(Refusal::Cycle));
        let deep = format!("query {}{}", "{ me ".repeat(40), "}".repeat(40));
        let (shape, _) = measured(&deep);
        assert_eq!(shape, Err(Refusal::TooDeep));
    }
}
