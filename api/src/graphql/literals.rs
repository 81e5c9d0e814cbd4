//! Enum values written as strings. The GraphQL specification accepts an enum
//! literal only as a bare name (`status: GOING`); async-graphql also accepts
//! `status: "GOING"`, and a client built on that breaks against any other
//! server. (A variable's value is JSON, where an enum is a string: that is
//! right, and not looked at here.)
//!
//! The check walks each definition of the document once, with the types of
//! the served schema (read from its SDL once per process), so it is linear
//! in the document like the rest of what runs before validation.

use std::{
    collections::{HashMap, HashSet},
    sync::OnceLock,
};

use async_graphql::parser::{
    parse_schema,
    types::{
        BaseType, ExecutableDocument, OperationType, Selection, SelectionSet, Type, TypeKind,
        TypeSystemDefinition,
    },
};
use async_graphql_value::Value;

/// What the check needs of the schema: each output field's argument types
/// and result type, each input object's field types, and the enums.
#[derive(Default)]
struct Types {
    /// (type, field) → (argument → its type, the field's named type).
    fields: HashMap<(String, String), (HashMap<String, Type>, String)>,
    inputs: HashMap<String, HashMap<String, Type>>,
    enums: HashSet<String>,
    roots: [String; 3],
}

fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut types = Types {
            roots: ["Query".into(), "Mutation".into(), "Subscription".into()],
            ..Types::default()
        };
        // The served schema's own SDL: it parses, or nothing is checked.
        let Ok(document) = parse_schema(super::sdl()) else {
            return types;
        };
        for definition in document.definitions {
            let TypeSystemDefinition::Type(definition) = definition else {
                continue;
            };
            let name = definition.node.name.node.to_string();
            match definition.node.kind {
                TypeKind::Object(object) => {
                    for field in object.fields {
                        let arguments = field
                            .node
                            .arguments
                            .into_iter()
                            .map(|a| (a.node.name.node.to_string(), a.node.ty.node))
                            .collect();
                        types.fields.insert(
                            (name.clone(), field.node.name.node.to_string()),
                            (arguments, named(&field.node.ty.node).to_owned()),
                        );
                    }
                }
                TypeKind::InputObject(input) => {
                    let fields = input
                        .fields
                        .into_iter()
                        .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                        .collect();
                    types.inputs.insert(name, fields);
                }
                TypeKind::Enum(_) => {
                    types.enums.insert(name);
                }
                _ => {}
            }
        }
        types
    })
}

/// The named type under any list wrappers.
fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

/// The first enum value written as a string, as a message.
pub fn enum_written_as_string(document: &ExecutableDocument) -> Option<String> {
    let types = types();
    for (_, operation) in document.operations.iter() {
        let root = match operation.node.ty {
            OperationType::Query => &types.roots[0],
            OperationType::Mutation => &types.roots[1],
            OperationType::Subscription => &types.roots[2],
        };
        if let Some(found) = selection_set(types, root, &operation.node.selection_set.node) {
            return Some(found);
        }
    }
    document.fragments.values().find_map(|fragment| {
        selection_set(
            types,
            fragment.node.type_condition.node.on.node.as_str(),
            &fragment.node.selection_set.node,
        )
    })
}

/// Fragment spreads are not followed: each fragment is walked on its own.
fn selection_set(types: &Types, parent: &str, set: &SelectionSet) -> Option<String> {
    set.items
        .iter()
        .find_map(|selection| match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                let (arguments, result) = types
                    .fields
                    .get(&(parent.to_owned(), field.name.node.to_string()))?;
                field
                    .arguments
                    .iter()
                    .find_map(|(name, value)| {
                        value_of(types, arguments.get(name.node.as_str())?, &value.node)
                    })
                    .or_else(|| selection_set(types, result, &field.selection_set.node))
            }
            Selection::InlineFragment(inline) => {
                let parent = inline
                    .node
                    .type_condition
                    .as_ref()
                    .map_or(parent, |condition| condition.node.on.node.as_str());
                selection_set(types, parent, &inline.node.selection_set.node)
            }
            Selection::FragmentSpread(_) => None,
        })
}

fn value_of(types: &Types, ty: &Type, value: &Value) -> Option<String> {
    match (&ty.base, value) {
        (BaseType::List(item), Value::List(items)) => {
            items.iter().find_map(|value| value_of(types, item, value))
        }
        // A single value stands for a list of one.
        (BaseType::List(item), value) => value_of(types, item, value),
        (BaseType::Named(name), Value::String(text)) if types.enums.contains(name.as_str()) => {
            Some(format!(
                "{name} is an enum: write {text} without quotes (a variable's value is a string)"
            ))
        }
        (BaseType::Named(name), Value::Object(fields)) => {
            let input = types.inputs.get(name.as_str())?;
            fields
                .iter()
                .find_map(|(field, value)| value_of(types, input.get(field.as_str())?, value))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn check(query: &str) -> Option<String> {
        enum_written_as_string(&parse_query(query).expect("parses"))
    }

    #[test]
    fn enum_literals_must_be_bare_names() {
        assert!(check(r#"mutation { rsvp(meetId: "1", status: "GOING") { status } }"#).is_some());
        assert!(check(r#"mutation { rsvp(meetId: "1", status: GOING) { status } }"#).is_none());
        assert!(
            check(r#"query { meets(filter: { search: "GOING" }) { edges { cursor } } }"#).is_none()
        );
        assert!(
            check(
                r#"query { m: meets { edges { node { attendees(status: "MAYBE") { edges { cursor } } } } } }"#
            )
            .is_some(),
            "nested"
        );
        assert!(
            check(
                r#"query { ...F } fragment F on Query { myInvitations(status: "PENDING") { edges { cursor } } }"#
            )
            .is_some(),
            "in a fragment"
        );
        assert!(
            check(r#"query Q($s: RsvpStatus) { __typename }"#).is_none(),
            "variables are not literals"
        );
    }
}
