//! JSON Schema (as OpenAI clients write it) → Gemini's `Schema`, an OpenAPI 3.0 subset.
//!
//! Gemini answers 400 to any key its `Schema` does not have: `additionalProperties`
//! (which OpenAI's strict mode requires), `$schema`, `$defs`, `strict`, `title` in some
//! places, string formats other than `enum` and `date-time`. So the schema is rebuilt
//! from the keys Gemini knows, and the JSON Schema spellings it lacks are translated:
//! `type: ["string", "null"]` → `type: "string", nullable: true`, `const` → `enum`,
//! `oneOf` → `anyOf`.

use serde_json::{Map, Value};

/// Keys copied as they are.
const KEPT: [&str; 17] = [
    "description",
    "enum",
    "required",
    "nullable",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "pattern",
    "default",
    "example",
    "title",
    "propertyOrdering",
];

/// String formats Gemini accepts (plus the numeric ones); others are dropped, since the
/// description still tells the model what is wanted.
const FORMATS: [&str; 6] = ["enum", "date-time", "int32", "int64", "float", "double"];

pub(crate) fn to_gemini(schema: Value) -> Value {
    let Value::Object(map) = schema else {
        return schema;
    };
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "type" => match value {
                // `["string", "null"]`: the first non-null type, nullable.
                Value::Array(types) => {
                    let mut nullable = false;
                    let mut first = None;
                    for t in types {
                        match t.as_str() {
                            Some("null") => nullable = true,
                            Some(_) if first.is_none() => first = Some(t),
                            _ => {}
                        }
                    }
                    if let Some(t) = first {
                        out.insert(key, t);
                    }
                    if nullable {
                        out.insert("nullable".into(), true.into());
                    }
                }
                other => {
                    out.insert(key, other);
                }
            },
            "properties" => {
                if let Value::Object(props) = value {
                    let props = props.into_iter().map(|(k, v)| (k, to_gemini(v))).collect();
                    out.insert(key, Value::Object(props));
                }
            }
            "items" => {
                out.insert(key, to_gemini(value));
            }
            "anyOf" | "oneOf" => {
                if let Value::Array(options) = value {
                    let options = options.into_iter().map(to_gemini).collect();
                    out.insert("anyOf".into(), Value::Array(options));
                }
            }
            "const" => {
                out.entry("enum")
                    .or_insert_with(|| Value::Array(vec![value]));
            }
            "format" if value.as_str().is_some_and(|f| FORMATS.contains(&f)) => {
                out.insert(key, value);
            }
            k if KEPT.contains(&k) => {
                out.insert(key, value);
            }
            // $schema, $id, $defs, additionalProperties, strict, examples, …
            _ => {}
        }
    }
    Value::Object(out)
}

/// Whether a function's parameter schema declares no parameters at all. Gemini rejects
/// an object schema with empty `properties`, so such a declaration leaves `parameters`
/// out.
pub(crate) fn is_empty_object(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => {
            map.get("type").is_none_or(|t| t == "object")
                && map
                    .get("properties")
                    .is_none_or(|p| p.as_object().is_none_or(Map::is_empty))
                && !map.contains_key("anyOf")
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_what_gemini_knows_and_translates_the_rest() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "mode": {"const": "fast"},
                "when": {"type": "string", "format": "date-time"},
                "site": {"type": "string", "format": "uri"},
                "tags": {"type": "array", "items": {"type": ["string", "null"], "maxLength": 5}},
                "either": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                "additionalProperties": {"type": "boolean"},
            },
            "required": ["mode"],
        });
        assert_eq!(
            to_gemini(schema),
            json!({
                "type": "object",
                "properties": {
                    "mode": {"enum": ["fast"]},
                    "when": {"type": "string", "format": "date-time"},
                    "site": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string", "nullable": true, "maxLength": 5}},
                    "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "additionalProperties": {"type": "boolean"},
                },
                "required": ["mode"],
            })
        );
    }

    #[test]
    fn empty_object_schemas() {
        assert!(is_empty_object(&json!({})));
        assert!(is_empty_object(
            &json!({"type": "object", "properties": {}})
        ));
        assert!(!is_empty_object(
            &json!({"type": "object", "properties": {"a": {}}})
        ));
        assert!(!is_empty_object(&json!({"type": "string"})));
    }
}
