//! Building blocks every JSON-over-HTTP adapter needs and no provider owns: errors, scrubbed
//! provider messages, typed deployment settings, and request-body pieces.
//!
//! What differs between providers (error body shapes, key formats, the default credential
//! placement, default headers) is a parameter here, so an adapter keeps only its own code.

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};
use serde_json::{Map, Number, Value};

use super::{
    ContentPart, CredentialPlacement, Deployment, ErrorKind, Header, ImagePart, Message,
    PluginError, Role, StreamFraming, UpstreamRequest, unsupported,
};

/// Provider messages are shown to clients; a bound keeps a runaway body out of logs.
const MAX_MESSAGE_CHARS: usize = 500;

fn error(kind: ErrorKind, message: impl Into<String>) -> PluginError {
    PluginError {
        kind,
        message: message.into(),
    }
}

/// The client's request cannot be sent to this provider as it stands (400).
pub fn invalid(message: impl Into<String>) -> PluginError {
    error(ErrorKind::InvalidRequest, message)
}

/// The adapter or the operator's settings are at fault, never the client (500).
pub fn internal(message: impl Into<String>) -> PluginError {
    error(ErrorKind::Internal, message)
}

/// The upstream answered something unreadable (502; the host may try another deployment).
pub fn bad_upstream(message: impl Into<String>) -> PluginError {
    error(ErrorKind::BadUpstreamResponse, message)
}

/// The upstream reported an error of its own; the host keeps the upstream status.
pub fn upstream(message: impl Into<String>) -> PluginError {
    error(ErrorKind::UpstreamError, message)
}

/// The error for a non-2xx answer: the provider's message when `message_of` finds one in
/// the JSON body, else a line naming the status (the host keeps the status itself).
pub fn status_error(
    status: u16,
    body: &[u8],
    message_of: impl FnOnce(&Value) -> Option<String>,
) -> PluginError {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| message_of(&v))
        .map_or_else(|| status_only(status), upstream)
}

fn status_only(status: u16) -> PluginError {
    upstream(format!("the upstream answered with HTTP status {status}"))
}

/// The error a body reports in-band, with a generic line when it carries no message, so
/// that a reported error is never mistaken for an answer.
pub fn reported_error(message: Option<String>) -> PluginError {
    upstream(message.unwrap_or_else(|| "the upstream reported an error".into()))
}

/// The error a body that should have been an answer carries in a non-null `error`
/// member: some servers report errors with a 2xx status.
pub fn embedded_error(
    body: &Value,
    message_of: impl FnOnce(&Value) -> Option<String>,
) -> Option<PluginError> {
    match body.get("error") {
        None | Some(Value::Null) => None,
        Some(_) => Some(reported_error(message_of(body))),
    }
}

/// The message of an error body: `error.message`, a plain-string `error`, or else the
/// first of the top-level string members `fallbacks` that the provider's servers use.
/// It is trimmed (`None` when empty), bounded, and words that start with one of
/// `key_prefixes` or hold `***` (a masked key) are redacted, since clients see it.
pub fn error_message(body: &Value, fallbacks: &[&str], key_prefixes: &[&str]) -> Option<String> {
    let text = match body.get("error") {
        Some(Value::Object(e)) => e.get("message").and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
    .or_else(|| {
        fallbacks
            .iter()
            .find_map(|key| body.get(*key).and_then(Value::as_str))
    })?;
    let text = text.trim();
    (!text.is_empty()).then(|| scrub(text, key_prefixes))
}

/// Bounds the message and masks anything that looks like a credential: clients must
/// never see even part of a key.
fn scrub(text: &str, key_prefixes: &[&str]) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS));
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if looks_like_key(word, key_prefixes) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
    }
    match out.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => {
            out.truncate(cut);
            out.push('…');
            out
        }
        None => out,
    }
}

fn looks_like_key(word: &str, key_prefixes: &[&str]) -> bool {
    let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '*');
    word.contains("***") || key_prefixes.iter().any(|p| word.starts_with(p))
}

/// The error for a stream that ended before `end` (its end marker) arrived: the answer
/// was cut, so the upstream response is bad.
pub fn stream_cut(end: &str) -> PluginError {
    bad_upstream(format!("stream ended before {end}"))
}

/// An upstream body as JSON; `what` names it in the error ("the upstream response").
pub fn read_json(bytes: &[u8], what: &str) -> Result<Value, PluginError> {
    serde_json::from_slice(bytes).map_err(|_| bad_upstream(format!("{what} is not valid JSON")))
}

/// An upstream body that must be a JSON object, as every chat answer and event is.
pub fn read_object(bytes: &[u8], what: &str) -> Result<Value, PluginError> {
    let value = read_json(bytes, what)?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(bad_upstream(format!("{what} is not a JSON object")))
    }
}

/// A deployment's adapter settings (`[deployments.NAME.settings]`, handed over as
/// `deployment.settings`) as `T`, blank meaning `{}`. With `#[serde(deny_unknown_fields)]`
/// a typo'd key is refused by name. A broken setting is the operator's mistake, not the
/// client's, so errors are `internal`; they name the deployment and the key, never the
/// value (header values may be secrets).
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Raw { auth: Option<String>, #[serde(default)] headers: StringTable }
///
/// let raw: Raw = settings(&deployment)?;
/// ```
pub fn settings<T: DeserializeOwned>(deployment: &Deployment) -> Result<T, PluginError> {
    let whole = format!("deployment `{}`: adapter settings", deployment.name);
    let key = format!("deployment `{}`: adapter setting", deployment.name);
    crate::config::parse(&deployment.settings, &whole, &key)
}

/// The error for a setting that was read but fails a check: `key` must be `want`.
pub fn bad_setting(deployment: &Deployment, key: &str, want: &str) -> PluginError {
    internal(format!(
        "deployment `{}`: adapter setting `{key}` must be {want}",
        deployment.name
    ))
}

/// A table of strings, such as query parameters or headers. Numbers and booleans are
/// written out, since TOML users write `api-version = 2024` as easily as a string;
/// `null` means an empty table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringTable(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for StringTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        string_table(Some(&value))
            .map(StringTable)
            .ok_or_else(|| de::Error::custom("expected a table of strings"))
    }
}

impl StringTable {
    /// The table as extra request headers (setting `headers`). Names must be HTTP
    /// tokens, so that a typo fails here rather than upstream; values must pass
    /// `value_ok` (the provider decides how strict to be, e.g. [`is_header_value`]).
    pub fn into_headers(
        self,
        deployment: &Deployment,
        value_ok: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, String)>, PluginError> {
        if self.0.iter().all(|(k, v)| is_token(k) && value_ok(v)) {
            Ok(self.0)
        } else {
            Err(bad_setting(
                deployment,
                "headers",
                "a table of header names to strings",
            ))
        }
    }
}

/// Where the host puts the key, from the settings `auth` and `auth_header`. `auth` is
/// `"none"`, `"bearer"`, `"header"` (only when `default` is a header) or `"query"` (only
/// when the provider reads the key from the query parameter `query`); `auth_header` names
/// the header and implies `"header"`. With neither set, the provider's own `default`
/// applies.
pub fn credential(
    deployment: &Deployment,
    auth: Option<&str>,
    auth_header: Option<&str>,
    default: CredentialPlacement,
    query: Option<&str>,
) -> Result<CredentialPlacement, PluginError> {
    let bad = |key: &str, want: &str| bad_setting(deployment, key, want);
    let mut modes = Vec::with_capacity(4);
    if matches!(default, CredentialPlacement::Header(_)) {
        modes.push("header");
    }
    if query.is_some() {
        modes.push("query");
    }
    modes.extend(["bearer", "none"]);
    if let Some(a) = auth
        && !modes.contains(&a)
    {
        return Err(bad("auth", &one_of(&modes)));
    }
    let auth_header = match auth_header {
        None => None,
        Some(h) if is_token(h) => Some(h.to_ascii_lowercase()),
        Some(_) => return Err(bad("auth_header", "a header name")),
    };
    Ok(match (auth, auth_header, query) {
        (Some("none"), _, _) => CredentialPlacement::None,
        (Some("bearer" | "query"), Some(_), _) => {
            let want = if query.is_some() {
                "left out unless auth = \"header\""
            } else {
                "left out when auth = \"bearer\""
            };
            return Err(bad("auth_header", want));
        }
        (Some("bearer"), None, _) => CredentialPlacement::Bearer,
        (Some("query"), None, Some(param)) => CredentialPlacement::Query(param.into()),
        (_, Some(h), _) => CredentialPlacement::Header(h),
        _ => default,
    })
}

/// `"a", "b" or "c"`.
fn one_of(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// A JSON object whose values are strings (numbers and booleans written out); `None` for
/// any other shape.
fn string_table(value: Option<&Value>) -> Option<Vec<(String, String)>> {
    let map = match value {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return None,
    };
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), v))
        })
        .collect()
}

/// An HTTP header name (RFC 9110 `token`), so a typo fails in the adapter, not upstream.
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value without control characters (CR and LF would split the header).
pub fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, so that text
/// put in a path or query can never add a segment, a query or a parameter of its own.
pub fn percent_encode(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
}

/// A request header. Names are lowercased, as HTTP/2 requires.
pub fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.to_ascii_lowercase(),
        value: value.as_bytes().to_vec(),
    }
}

/// The headers of a JSON request: `content-type: application/json` and the provider's
/// `defaults` (an API version, say), each unless a `configured` header of the same name
/// replaces it, then the configured headers.
pub fn json_headers(defaults: &[(&str, &str)], configured: &[(String, String)]) -> Vec<Header> {
    let replaced = |name: &str| configured.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut out = Vec::with_capacity(1 + defaults.len() + configured.len());
    for (name, value) in [("content-type", "application/json")]
        .iter()
        .chain(defaults)
    {
        if !replaced(name) {
            out.push(header(name, value));
        }
    }
    out.extend(configured.iter().map(|(k, v)| header(k, v)));
    out
}

/// A `POST` of `body` as JSON, read as SSE when `stream`: the shape of every chat call.
pub fn post_json(
    path: String,
    headers: Vec<Header>,
    body: &Value,
    credential: CredentialPlacement,
    stream: bool,
) -> Result<UpstreamRequest, PluginError> {
    let body =
        serde_json::to_vec(body).map_err(|_| internal("could not serialise the request body"))?;
    Ok(UpstreamRequest {
        method: "POST".into(),
        path,
        headers,
        body,
        credential,
        streaming: stream.then_some(StreamFraming::Sse),
    })
}

/// The request's `extra` fields (those the canonical form does not model) as an object;
/// blank means none.
pub fn extra_fields(extra: &str) -> Result<Map<String, Value>, PluginError> {
    if extra.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(extra) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid("the request's extra fields are not a JSON object")),
    }
}

/// Merges `from` into `into` without overwriting: keys already set win and objects merge
/// key by key, so `extra` may add provider parameters but never change what the typed
/// fields say.
pub fn merge_missing(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (None, value) => {
                into.insert(key, value);
            }
            (Some(Value::Object(have)), Value::Object(add)) => merge_missing(have, add),
            (Some(_), _) => {}
        }
    }
}

/// A JSON number for a sampling value. NaN and infinities have no JSON form and give
/// `None`, so the field is left out and the provider default applies.
pub fn json_float(x: f64) -> Option<Value> {
    Number::from_f64(x).map(Value::Number)
}

/// The texts of a system message, for providers whose system prompt is not a turn.
/// Empty texts are dropped; any other part is refused (message `index`).
pub fn system_texts(index: usize, parts: Vec<ContentPart>) -> Result<Vec<String>, PluginError> {
    parts
        .into_iter()
        .filter_map(|part| match part {
            ContentPart::Text(text) if text.is_empty() => None,
            ContentPart::Text(text) => Some(Ok(text)),
            _ => Some(Err(invalid(format!(
                "messages[{index}]: system messages may only contain text"
            )))),
        })
        .collect()
}

/// One turn of a conversation whose system prompt is kept apart: its wire role and its
/// blocks (or parts).
pub struct Turn {
    /// The provider's name for the speaker (`user`, `assistant`, `model`).
    pub role: &'static str,
    /// The provider's content blocks, never empty.
    pub blocks: Vec<Value>,
}

/// Splits `messages` into the texts of the system and developer messages (see
/// [`system_texts`]) and the turns `turn` makes of the others, in order. Consecutive
/// turns of one role are merged and empty ones dropped: providers that keep the system
/// prompt apart want turns to alternate, and reject empty ones.
pub fn alternating_turns(
    messages: Vec<Message>,
    mut turn: impl FnMut(usize, Message) -> Result<(&'static str, Vec<Value>), PluginError>,
) -> Result<(Vec<String>, Vec<Turn>), PluginError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        if matches!(m.role, Role::System | Role::Developer) {
            system.extend(system_texts(i, m.content)?);
            continue;
        }
        let (role, blocks) = turn(i, m)?;
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.blocks.extend(blocks),
            _ => turns.push(Turn { role, blocks }),
        }
    }
    Ok((system, turns))
}

/// The joined text of content that is all text, `None` when any part is not: providers
/// take plain text as a string where they would need blocks for anything else.
pub fn plain_text(parts: &[ContentPart]) -> Option<String> {
    parts
        .iter()
        .map(|p| match p {
            ContentPart::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// `data:<media type>;base64,<data>` → (media type, data). Other `data:` URLs are `None`:
/// providers take inline data as base64 only.
pub fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    let media_type = media_type.split(';').next().unwrap_or_default();
    (!media_type.is_empty()).then_some((media_type, data))
}

/// Where an image comes from, as providers that fetch URLs themselves distinguish it.
pub enum ImageSource<'a> {
    /// Base64 data from a `data:` URL.
    Inline { media_type: &'a str, data: &'a str },
    /// An `http:` or `https:` URL.
    Url(&'a str),
}

/// The source of image part `image` (of message `index`). Any other URL scheme is
/// refused: the provider would either reject it or fetch something it should not.
pub fn image_source(index: usize, image: &ImagePart) -> Result<ImageSource<'_>, PluginError> {
    if let Some((media_type, data)) = data_url(&image.url) {
        return Ok(ImageSource::Inline { media_type, data });
    }
    if image.url.starts_with("https://") || image.url.starts_with("http://") {
        return Ok(ImageSource::Url(&image.url));
    }
    Err(invalid(format!(
        "messages[{index}]: an image must be an https: URL or a base64 data: URL"
    )))
}

/// The (media type, base64 data) of an OpenAI `file` part (raw JSON `raw`, in message
/// `index`) whose data URL has a media type the provider reads (`accept`). Any other part
/// is `unsupported`: dropping it silently would change the prompt.
pub fn file_data(
    index: usize,
    raw: &str,
    accept: impl Fn(&str) -> bool,
) -> Result<(String, String), PluginError> {
    let part: Value = serde_json::from_str(raw).map_err(|_| {
        invalid(format!(
            "messages[{index}]: a content part is not a JSON object"
        ))
    })?;
    let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind == "file"
        && let Some((media_type, data)) = part
            .pointer("/file/file_data")
            .and_then(Value::as_str)
            .and_then(data_url)
        && accept(media_type)
    {
        return Ok((media_type.to_string(), data.to_string()));
    }
    Err(unsupported(&format!("content parts of type `{kind}`")))
}

/// Tool call `j`'s `arguments` (of message `index`) as the JSON object providers that
/// take arguments as JSON want; blank means none.
pub fn call_arguments(index: usize, j: usize, arguments: &str) -> Result<Value, PluginError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(invalid(format!(
            "messages[{index}].tool_calls[{j}]: `arguments` is not a JSON object"
        ))),
    }
}

/// Tool `name`'s `parameters` schema as an object, for providers that need one; blank
/// means "no arguments" (an empty object).
pub fn tool_parameters(name: &str, parameters: &str) -> Result<Map<String, Value>, PluginError> {
    if parameters.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(parameters) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid(format!(
            "tool `{name}`: `parameters` is not a JSON object"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        auth: Option<String>,
        auth_header: Option<String>,
    }

    fn table(settings: &str) -> Result<CredentialPlacement, PluginError> {
        let d = crate::testing::deployment("http://b", "m", settings);
        let raw: Raw = super::settings(&d)?;
        credential(
            &d,
            raw.auth.as_deref(),
            raw.auth_header.as_deref(),
            CredentialPlacement::Header("x-key".into()),
            Some("key"),
        )
    }

    #[test]
    fn messages_are_found_scrubbed_and_bounded() {
        let keys = &["sk-"];
        let body = json!({"error": {"message": " bad key sk-abc, or 'ab***yz'. "}});
        assert_eq!(
            error_message(&body, &[], keys).as_deref(),
            Some("bad key [redacted] or [redacted]")
        );
        let body = json!({"detail": "nope", "message": ""});
        assert_eq!(error_message(&body, &["message", "detail"], keys), None);
        assert_eq!(
            error_message(&body, &["detail"], keys).as_deref(),
            Some("nope")
        );
        let long = json!({"error": "x".repeat(600)});
        let m = error_message(&long, &[], keys).unwrap_or_default();
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS + 1);
        let e = status_error(503, b"<html>", |_| None);
        assert_eq!(e.message, "the upstream answered with HTTP status 503");
        assert!(embedded_error(&json!({"error": null}), |_| None).is_none());
    }

    #[test]
    fn credential_modes_follow_the_provider() {
        assert!(matches!(table(""), Ok(CredentialPlacement::Header(h)) if h == "x-key"));
        assert!(matches!(
            table(r#"{"auth": "query"}"#),
            Ok(CredentialPlacement::Query(k)) if k == "key"
        ));
        assert!(matches!(
            table(r#"{"auth_header": "Api-Key", "auth": null}"#),
            Ok(CredentialPlacement::Header(h)) if h == "api-key"
        ));
        let e = table(r#"{"auth": "basic"}"#).err().map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some(
                "deployment `test`: adapter setting `auth` must be \"header\", \"query\", \"bearer\" or \"none\""
            )
        );
        let e = table(r#"{"auth": "bearer", "auth_header": "a"}"#)
            .err()
            .map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some(
                "deployment `test`: adapter setting `auth_header` must be left out unless auth = \"header\""
            )
        );
        assert!(table("[]").is_err());
        let e = table(r#"{"auth_heder": "api-key"}"#)
            .err()
            .map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some(
                "deployment `test`: adapter settings: unknown field `auth_heder`, expected `auth` or `auth_header`"
            )
        );
        assert_eq!(one_of(&["bearer", "none"]), "\"bearer\" or \"none\"");
    }

    #[test]
    fn string_tables_write_scalars_out_and_check_headers() {
        let d = crate::testing::deployment("http://b", "m", "");
        let read = |json: &str| -> Result<StringTable, PluginError> {
            crate::config::parse(json, "whole", "key")
        };
        assert_eq!(
            read(r#"{"v": 2024, "b": true, "s": "x"}"#).ok(),
            Some(StringTable(vec![
                ("b".into(), "true".into()),
                ("s".into(), "x".into()),
                ("v".into(), "2024".into()),
            ]))
        );
        assert_eq!(read("null").ok(), Some(StringTable::default()));
        let e = read(r#"{"v": [1]}"#).err().map(|e| e.message);
        assert_eq!(e.as_deref(), Some("whole: expected a table of strings"));
        let bad = StringTable(vec![("x y".into(), "v".into())]);
        assert!(bad.into_headers(&d, |_| true).is_err());
        let crlf = StringTable(vec![("x".into(), "a\r\nb".into())]);
        assert!(crlf.into_headers(&d, is_header_value).is_err());
    }

    #[test]
    fn configured_headers_replace_defaults() {
        let configured = vec![("Content-Type".to_string(), "text/plain".to_string())];
        let names: Vec<String> = json_headers(&[("v", "1")], &configured)
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(names, ["v", "content-type"]);
    }

    #[test]
    fn extra_never_overrides() {
        let mut body = json!({"a": 1, "o": {"x": 1}});
        let extra = extra_fields(r#"{"a": 2, "b": 3, "o": {"x": 2, "y": 3}}"#);
        if let (Value::Object(body), Ok(extra)) = (&mut body, extra) {
            merge_missing(body, extra);
        }
        assert_eq!(body, json!({"a": 1, "b": 3, "o": {"x": 1, "y": 3}}));
        assert!(extra_fields("[1]").is_err());
        assert!(extra_fields("  ").is_ok_and(|m| m.is_empty()));
    }
}
