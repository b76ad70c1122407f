//! Typed plugin settings: the plugin config and a deployment's adapter settings, read
//! with serde so that `#[serde(deny_unknown_fields)]` catches a typo'd key.
//!
//! Both arrive as JSON text. It is parsed into a `serde_json::Value` and handed to the
//! plugin's type through a deserializer of our own rather than `serde_json::from_str`:
//! serde's stock messages quote the offending value (`invalid type: string "sk-…"`), and
//! a header value may be a secret. Ours name the key and the kind of value, never the
//! value itself.

use std::fmt::{self, Display};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, Visitor, value::StringDeserializer,
};
use serde_json::Value;

use crate::host;
use crate::types::{ErrorKind, PluginError};

/// The plugin's config (`[plugins.NAME.config]`) as `T`; a plugin without one reads as
/// `{}`, so `#[serde(default)]` fields take their defaults. A broken config is the
/// operator's mistake, so the error is `internal`; it names the key, never the value.
///
/// ```ignore
/// #[derive(serde::Deserialize, Default)]
/// #[serde(deny_unknown_fields, default)]
/// struct Config { strategy: Option<String> }
///
/// let config: Config = switchyard_sdk::config()?;
/// ```
pub fn config<T: DeserializeOwned>() -> Result<T, PluginError> {
    parse_config(&host::config())
}

/// The error for a config value that parses but makes no sense (a share above 1, a
/// negative bound), in the same words as the parse errors: `plugin config `KEY`: WHAT`.
pub fn config_error(key: &str, what: &str) -> PluginError {
    internal(format!("plugin config `{key}`: {what}"))
}

/// [`config`] from the JSON text `host::config()` returns, for unit tests.
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T, PluginError> {
    parse(json, "plugin config", "plugin config")
}

/// `json` (blank meaning `{}`) as `T`. Errors start with `whole` ("adapter settings")
/// when about the table itself, else with `key` ("adapter setting") and the key's path.
pub(crate) fn parse<T: DeserializeOwned>(
    json: &str,
    whole: &str,
    key: &str,
) -> Result<T, PluginError> {
    let json = json.trim();
    let value = if json.is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_str(json).map_err(|_| internal(format!("{whole}: not valid JSON")))?
    };
    T::deserialize(Node(value)).map_err(|p| internal(p.describe(whole, key)))
}

fn internal(message: String) -> PluginError {
    PluginError {
        kind: ErrorKind::Internal,
        message,
    }
}

/// A deserialization error: a message that never quotes a value, and where it happened.
#[derive(Debug)]
pub(crate) struct Problem {
    /// Keys and indices, innermost first (errors bubble up from the leaf).
    path: Vec<Step>,
    message: String,
}

#[derive(Debug)]
enum Step {
    Key(String),
    Index(usize),
}

impl Problem {
    fn at(mut self, step: Step) -> Self {
        self.path.push(step);
        self
    }

    /// `plugin config: unknown field …` or `plugin config `headers.x`: invalid type …`.
    fn describe(&self, whole: &str, key: &str) -> String {
        if self.path.is_empty() {
            return format!("{whole}: {}", self.message);
        }
        let mut path = String::new();
        for step in self.path.iter().rev() {
            match step {
                Step::Key(k) if path.is_empty() => path.push_str(k),
                Step::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        format!("{key} `{path}`: {}", self.message)
    }
}

impl Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe("settings", "setting"))
    }
}

impl std::error::Error for Problem {}

impl de::Error for Problem {
    fn custom<M: Display>(msg: M) -> Self {
        Problem {
            path: Vec::new(),
            message: msg.to_string(),
        }
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::custom(format_args!(
            "invalid type: {}, expected {exp}",
            kind(&unexp)
        ))
    }

    fn invalid_value(_unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::custom(format_args!("invalid value, expected {exp}"))
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format_args!("unknown value, expected {}", one_of(expected)))
    }
}

/// What kind of value `unexp` is, without the value.
fn kind(unexp: &Unexpected<'_>) -> &'static str {
    match unexp {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
        Unexpected::Float(_) => "a number",
        Unexpected::Char(_) | Unexpected::Str(_) => "a string",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit => "null",
        Unexpected::Seq => "a list",
        Unexpected::Map => "a table",
        _ => "another kind of value",
    }
}

/// `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``.
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => "nothing".into(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

/// A JSON value as a serde `Deserializer` whose errors are [`Problem`]s.
struct Node(Value);

impl<'de> Deserializer<'de> for Node {
    type Error = Problem;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (_, Some(i), _) => visitor.visit_i64(i),
                (_, _, Some(f)) => visitor.visit_f64(f),
                _ => Err(de::Error::custom("a number out of range")),
            },
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visitor.visit_seq(Seq {
                items: items.into_iter().enumerate(),
            }),
            Value::Object(map) => visitor.visit_map(Map {
                entries: map.into_iter(),
                value: None,
            }),
        }
    }

    /// `null` is "unset", as TOML (which has no null) would have it.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    /// Config enums are unit variants written as strings (`mode = "deny"`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Problem> {
        match self.0 {
            Value::String(s) => {
                let variant: StringDeserializer<Problem> = s.into_deserializer();
                visitor.visit_enum(variant)
            }
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Problem> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

fn unexpected(value: &Value) -> Unexpected<'static> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(_) => Unexpected::Bool(false),
        Value::Number(_) => Unexpected::Float(0.0),
        Value::String(_) => Unexpected::Str(""),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

struct Seq {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
}

impl<'de> SeqAccess<'de> for Seq {
    type Error = Problem;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Problem> {
        match self.items.next() {
            None => Ok(None),
            Some((i, v)) => seed
                .deserialize(Node(v))
                .map(Some)
                .map_err(|p| p.at(Step::Index(i))),
        }
    }
}

struct Map {
    entries: serde_json::map::IntoIter,
    /// The key and value of the entry whose key was just read.
    value: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for Map {
    type Error = Problem;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Problem> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let read = seed.deserialize(StringDeserializer::<Problem>::new(key.clone()))?;
        self.value = Some((key, value));
        Ok(Some(read))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Problem> {
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value was read before its key"))?;
        seed.deserialize(Node(value))
            .map_err(|p| p.at(Step::Key(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        mode: Option<Mode>,
        limit: Option<u32>,
        names: Vec<String>,
        headers: std::collections::BTreeMap<String, String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    enum Mode {
        Redact,
        Deny,
    }

    fn message(json: &str) -> String {
        parse_config::<Sample>(json)
            .err()
            .map(|e| e.message)
            .unwrap_or_default()
    }

    #[test]
    fn blank_is_an_empty_table_and_values_read() {
        assert_eq!(parse_config::<Sample>("  ").ok(), Some(Sample::default()));
        let s = parse_config::<Sample>(
            r#"{"mode": "deny", "limit": 3, "names": ["a"], "headers": {"x": "y"}}"#,
        )
        .ok();
        assert_eq!(s.as_ref().and_then(|s| s.mode.as_ref()), Some(&Mode::Deny));
        assert_eq!(s.and_then(|s| s.limit), Some(3));
        assert_eq!(
            parse_config::<Sample>(r#"{"mode": null}"#).ok(),
            Some(Sample::default())
        );
    }

    #[test]
    fn errors_name_the_key_and_never_the_value() {
        assert_eq!(
            message(r#"{"mdoe": "deny"}"#),
            "plugin config: unknown field `mdoe`, expected one of `mode`, `limit`, `names`, `headers`"
        );
        assert_eq!(
            message(r#"{"mode": "sk-secret"}"#),
            "plugin config `mode`: unknown value, expected `redact` or `deny`"
        );
        assert_eq!(
            message(r#"{"headers": {"x": {"a": 1}}}"#),
            "plugin config `headers.x`: invalid type: a table, expected a string"
        );
        assert_eq!(
            message(r#"{"names": ["a", 7]}"#),
            "plugin config `names[1]`: invalid type: an integer, expected a string"
        );
        assert_eq!(
            message(r#"{"limit": 99999999999}"#),
            "plugin config `limit`: invalid value, expected u32"
        );
        assert_eq!(
            message(r#"{"limit": "sk-secret"}"#),
            "plugin config `limit`: invalid type: a string, expected u32"
        );
        assert_eq!(message("{oops"), "plugin config: not valid JSON");
        assert!(!message(r#"{"names": "sk-secret"}"#).contains("sk-secret"));
    }
}
