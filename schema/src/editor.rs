//! The editor schema: what `schema/plan.schema.json` and `swing schema` carry for editors and
//! other JSON Schema validators (yaml-language-server, check-jsonschema, …).
//!
//! Owns deriving it from the shape schema ([`crate::plan_schema`]) in three steps:
//! - tagged unions (`switch.method`, provider `type`) become a discriminator `enum` plus one
//!   `if {tag} then {variant}` per tag instead of a `oneOf`, so a validator reports the field
//!   the chosen variant misses (`record`) instead of "best match: another variant";
//! - `Version` also takes an unquoted non-integer number (`version: 25.1`), which swing reads
//!   as the text it was written as;
//! - the cross-field rules JSON Schema can state, as `allOf` of `if`/`then` (see [`rules`]).
//!
//! Must not: be what the engine validates with (the engine checks shape with `plan_schema`
//! and states these rules itself, with better messages), hold a rule the engine does not
//! enforce, or name a tag value, pattern or definition by a copied string where the types or
//! their constants give it.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::plan::{
    ENDPOINT_PATTERN, Failover, HOSTNAME_PATTERN, OperatorMode, Provider, Strategy, Switch, Version,
};

/// Where a rule applies.
#[derive(Debug, Clone)]
pub enum Place {
    /// The plan's top level.
    Root,
    /// A definition of `$defs` (named by its type's schema name).
    Def(String),
    /// The variant of a tagged union (a definition) that has this property.
    Variant { def: String, property: &'static str },
}

/// One cross-field rule of the editor schema.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Where it applies.
    pub place: Place,
    /// The rule in words (becomes the subschema's `$comment`).
    pub says: &'static str,
    /// The subschema (`if`/`then`, or a plain constraint) added to the place's `allOf`.
    pub schema: Value,
}

fn def<T: JsonSchema>() -> String {
    T::schema_name().into_owned()
}

/// A unit enum value as it is written in a plan (`Strategy::Asynchronous` → `"asynchronous"`).
fn tag<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `key` is present and not empty (`key: ~` is the same as leaving it out).
fn given(key: &str) -> Value {
    json!({ "required": [key], "properties": { key: { "not": { "type": "null" } } } })
}

/// `key` is present and equals `value`.
fn is(key: &str, value: Value) -> Value {
    json!({ "required": [key], "properties": { key: { "const": value } } })
}

/// The cross-field rules the editor schema adds: each one the engine's `validate` enforces
/// too (there with its own message), written as JSON Schema can state it.
pub fn rules() -> Vec<Rule> {
    let failover = def::<Failover>();
    let provider = def::<Provider>();
    let switch = def::<Switch>();
    vec![
        Rule {
            place: Place::Root,
            says: "a plan is a failover upgrade or a hardware migration, not both",
            schema: json!({ "if": given("failover"), "then": { "properties": { "migration": { "type": "null" } } } }),
        },
        Rule {
            place: Place::Root,
            says: "`failover` needs two appliances",
            schema: json!({ "if": given("failover"), "then": { "properties": { "appliances": { "minProperties": 2 } } } }),
        },
        Rule {
            place: Place::Root,
            says: "`migration` needs two appliances (old and new)",
            schema: json!({ "if": given("migration"), "then": { "properties": { "appliances": { "minProperties": 2 } } } }),
        },
        Rule {
            place: Place::Root,
            says: "two appliances need `failover` (a pair) or `migration` (old → new)",
            schema: json!({
                "if": {
                    "required": ["appliances"],
                    "properties": { "appliances": { "type": "object", "minProperties": 2 } },
                    "not": given("migration")
                },
                "then": { "required": ["failover"], "properties": { "failover": { "type": "object" } } }
            }),
        },
        Rule {
            place: Place::Root,
            says: "`site` is a hostname (also for validators that do not check formats)",
            schema: json!({ "properties": { "site": { "pattern": HOSTNAME_PATTERN } } }),
        },
        Rule {
            place: Place::Def(failover.clone()),
            says: "an asynchronous upgrade moves the site to the backup, so it needs `switch`",
            schema: json!({
                "if": is("strategy", tag(Strategy::Asynchronous)),
                "then": { "required": ["switch"], "properties": { "switch": { "type": "object" } } }
            }),
        },
        Rule {
            place: Place::Def(failover),
            says: "`final_primary` applies only to an asynchronous upgrade",
            schema: json!({
                "if": is("strategy", tag(Strategy::Synchronous)),
                "then": { "properties": { "final_primary": { "type": "null" } } }
            }),
        },
        Rule {
            place: Place::Variant {
                def: provider.clone(),
                property: "operator",
            },
            says: "`operator: exec` needs `operator_command`",
            schema: json!({
                "if": is("operator", tag(OperatorMode::Exec)),
                "then": { "required": ["operator_command"], "properties": { "operator_command": { "type": "string" } } }
            }),
        },
        Rule {
            place: Place::Variant {
                def: provider,
                property: "server",
            },
            says: "`server` is `host:port`",
            schema: json!({ "properties": { "server": { "pattern": ENDPOINT_PATTERN } } }),
        },
        Rule {
            place: Place::Variant {
                def: switch,
                property: "public",
            },
            says: "`public` is `address:port`",
            schema: json!({ "properties": { "public": { "pattern": ENDPOINT_PATTERN } } }),
        },
    ]
}

/// The editor schema: [`crate::plan_schema`] with tagged unions as `if`/`then` per tag, an
/// unquoted number accepted as a version, and the cross-field [`rules`].
pub fn editor_schema() -> Value {
    let mut schema = crate::plan_schema();
    if let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) {
        for node in defs.values_mut() {
            split_tagged_union(node);
        }
        if let Some(v) = defs.get_mut(&def::<Version>()) {
            accept_number_version(v);
        }
    }
    for rule in rules() {
        if let Some(node) = place_mut(&mut schema, &rule.place) {
            add_rule(node, rule.says, rule.schema);
        }
    }
    schema
}

/// The editor schema pretty-printed exactly as committed (trailing newline included).
pub fn editor_schema_pretty() -> String {
    let mut s = serde_json::to_string_pretty(&editor_schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// The node a rule goes into, if the schema has it.
pub fn place_mut<'s>(schema: &'s mut Value, place: &Place) -> Option<&'s mut Value> {
    match place {
        Place::Root => Some(schema),
        Place::Def(name) => schema.get_mut("$defs")?.get_mut(name),
        Place::Variant { def, property } => schema
            .get_mut("$defs")?
            .get_mut(def)?
            .get_mut("allOf")?
            .as_array_mut()?
            .iter_mut()
            .filter_map(|case| case.get_mut("then"))
            .find(|then| then.pointer(&format!("/properties/{property}")).is_some()),
    }
}

fn add_rule(node: &mut Value, says: &str, mut rule: Value) {
    if let Some(r) = rule.as_object_mut() {
        r.insert("$comment".to_owned(), Value::String(says.to_owned()));
    }
    if let Some(obj) = node.as_object_mut() {
        let all = obj
            .entry("allOf")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(a) = all.as_array_mut() {
            a.push(rule);
        }
    }
}

/// The discriminator of a `oneOf` whose branches each fix one property with `const` (serde's
/// internally tagged enums) and the tag of each branch, in order.
pub fn discriminator(branches: &[Value]) -> Option<(String, Vec<Value>)> {
    let mut disc: Option<String> = None;
    let mut tags = Vec::new();
    for b in branches {
        let (name, c) = b
            .get("properties")?
            .as_object()?
            .iter()
            .find_map(|(k, v)| v.get("const").map(|c| (k.clone(), c.clone())))?;
        match &disc {
            Some(d) if *d != name => return None,
            _ => disc = Some(name),
        }
        tags.push(c);
    }
    disc.map(|d| (d, tags))
}

/// `{oneOf: [variant…]}` → `{type: object, properties: {tag: {enum}}, required: [tag],
/// allOf: [{if: {tag: const}, then: variant}…]}`.
fn split_tagged_union(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    let Some(branches) = obj.get("oneOf").and_then(Value::as_array).cloned() else {
        return;
    };
    let Some((disc, tags)) = discriminator(&branches) else {
        return;
    };
    obj.remove("oneOf");
    let cases: Vec<Value> = branches
        .into_iter()
        .zip(&tags)
        .map(|(variant, t)| json!({ "if": is(&disc, t.clone()), "then": variant }))
        .collect();
    let mut props = Map::new();
    props.insert(disc.clone(), json!({ "enum": tags }));
    obj.insert("type".to_owned(), json!("object"));
    obj.insert("properties".to_owned(), Value::Object(props));
    obj.insert("required".to_owned(), json!([disc]));
    obj.insert("allOf".to_owned(), Value::Array(cases));
}

/// A dotted string, or an unquoted number that is not a whole number: swing reads `25.1` as
/// "25.1" and `25` as "25" (not dotted, refused). A validator sees the number only, so `25.0`
/// (a whole number to it, "25.0" to swing) must be quoted.
fn accept_number_version(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    obj.insert("type".to_owned(), json!(["string", "number"]));
    obj.insert("minimum".to_owned(), json!(0));
    obj.insert("if".to_owned(), json!({ "type": "integer" }));
    obj.insert("then".to_owned(), json!({ "type": "string" }));
    obj.insert(
        "description".to_owned(),
        json!("Dotted numeric version, e.g. \"25.1.3\"; an unquoted 25.1 is read as \"25.1\" (a whole number such as 25 or 25.0 must be written as text)"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every property a rule names exists where the rule applies: a field renamed in the
    /// types cannot leave a rule that silently never fires.
    #[test]
    fn every_rule_names_properties_of_its_place() {
        let mut schema = editor_schema();
        for rule in rules() {
            let says = rule.says;
            let node = place_mut(&mut schema, &rule.place)
                .unwrap_or_else(|| panic!("rule `{says}`: no place {:?}", rule.place))
                .clone();
            let props = node
                .get("properties")
                .and_then(Value::as_object)
                .unwrap_or_else(|| panic!("rule `{says}`: its place has no properties"));
            let mut named = Vec::new();
            collect_names(&rule.schema, &mut named);
            assert!(!named.is_empty(), "rule `{says}` names no property");
            for n in named {
                assert!(
                    props.contains_key(&n),
                    "rule `{says}` names `{n}`, not a property there"
                );
            }
            let attached = node["allOf"]
                .as_array()
                .is_some_and(|a| a.iter().any(|r| r["$comment"] == says));
            assert!(attached, "rule `{says}` was not attached");
        }
    }

    fn collect_names(v: &Value, out: &mut Vec<String>) {
        for key in ["if", "then", "not"] {
            if let Some(sub) = v.get(key) {
                collect_names(sub, out);
            }
        }
        if let Some(p) = v.get("properties").and_then(Value::as_object) {
            out.extend(p.keys().cloned());
        }
        if let Some(r) = v.get("required").and_then(Value::as_array) {
            out.extend(r.iter().filter_map(Value::as_str).map(str::to_owned));
        }
    }

    #[test]
    fn tagged_unions_become_an_enum_and_one_case_per_tag() {
        let schema = editor_schema();
        for (name, disc) in [(def::<Switch>(), "method"), (def::<Provider>(), "type")] {
            let node = &schema["$defs"][&name];
            assert!(node.get("oneOf").is_none(), "{name} still has oneOf");
            let tags = node["properties"][disc]["enum"].as_array().expect("enum");
            let cases = node["allOf"].as_array().expect("allOf");
            for t in tags {
                assert!(
                    cases
                        .iter()
                        .any(|c| c["if"]["properties"][disc]["const"] == *t),
                    "{name}: no case for {t}"
                );
            }
        }
        // The tags are the enums' own names.
        let tags = &schema["$defs"][def::<Switch>()]["properties"]["method"]["enum"];
        assert_eq!(*tags, json!(["shared-ip", "dns", "nat"]));
    }

    #[test]
    fn the_shape_schema_is_unchanged_by_it() {
        let shape = crate::plan_schema();
        assert!(shape["$defs"][def::<Switch>()].get("oneOf").is_some());
        assert_eq!(shape["$defs"][def::<Version>()]["type"], "string");
        assert!(shape.get("allOf").is_none());
    }
}
