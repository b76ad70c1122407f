//! Google Gemini `generateContent` and `streamGenerateContent?alt=sse` on the wire: the
//! model comes from the path, every stream event is a whole `GenerateContentResponse`,
//! and errors are `{"error":{code,message,status}}`.

use serde_json::{Value, json};

use crate::answer::{self, Answer, Prompt};
use crate::route::Reject;
use crate::sse::{Event, Framing, Script};

/// The model and the method named by a path such as
/// `/v1beta/models/gemini-2.0-flash:streamGenerateContent`.
pub(crate) fn target(path: &str) -> Option<(String, &str)> {
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    let (model, method) = rest.rsplit_once(':')?;
    Some((percent_decode(model), method))
}

/// Clients may escape `+` and `:` in the model segment; undo `%XX` only.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse(model: &str, stream: bool, body: &[u8]) -> Result<Prompt, Reject> {
    let req: Value = serde_json::from_slice(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| Reject::bad_request("Invalid JSON payload received."))?;
    let contents = req
        .get("contents")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Reject::bad_request("* GenerateContentRequest.contents: contents is not specified")
        })?;
    // A content without a role is a user turn.
    let turns = contents.iter().map(|c| {
        let role = c.get("role").and_then(Value::as_str).unwrap_or("user");
        (role, c.get("parts").unwrap_or(&Value::Null))
    });
    let system = req
        .pointer("/systemInstruction/parts")
        .map_or(0, |p| answer::words(&answer::text_of(p)));
    let prompt_tokens = system
        + turns
            .clone()
            .map(|(_, p)| answer::words(&answer::text_of(p)))
            .sum::<u64>();
    // The first declared function, skipping tools such as `googleSearch`.
    let first_tool = req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|t| t.pointer("/functionDeclarations/0/name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Prompt {
        model: model.to_owned(),
        last_user_text: answer::last_user_text(turns),
        prompt_tokens,
        first_tool,
        stream,
        include_usage: false,
    })
}

/// Google's canonical status name for an HTTP status.
fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

pub(crate) fn error_body(status: u16, message: &str) -> Value {
    json!({"error": {"code": status, "message": message, "status": status_name(status)}})
}

/// The error body Gemini sends for `status`, for `mock-status-NNN`.
pub(crate) fn simulated_error(status: u16) -> Value {
    let message = match status_name(status) {
        "RESOURCE_EXHAUSTED" => "Resource has been exhausted (e.g. check quota).",
        "UNAVAILABLE" => "The model is overloaded. Please try again later.",
        "INTERNAL" => "An internal error has occurred.",
        "UNAUTHENTICATED" => "API key not valid. Please pass a valid API key.",
        "NOT_FOUND" => "models/unknown is not found for API version v1beta.",
        _ => "Request contains an invalid argument.",
    };
    error_body(status, &format!("mock-status-{status}: {message}"))
}

fn part(answer: &Answer, text: &str) -> Value {
    match answer {
        Answer::Text(_) => json!({"text": text}),
        // Gemini has no call ids and sends the call whole, arguments as an object.
        Answer::ToolCall { name, arguments } => json!({
            "functionCall": {"name": name, "args": Answer::arguments_value(arguments)},
        }),
    }
}

fn usage(prompt: &Prompt, completion: u64) -> Value {
    json!({
        "promptTokenCount": prompt.prompt_tokens,
        "candidatesTokenCount": completion,
        "totalTokenCount": prompt.prompt_tokens + completion,
    })
}

/// One `GenerateContentResponse` carrying `parts`; the last one has the finish reason.
fn response(prompt: &Prompt, n: u64, parts: Value, last: bool, completion: u64) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if last {
        candidate["finishReason"] = json!("STOP");
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage(prompt, completion),
        "modelVersion": prompt.model,
        "responseId": format!("mock-{n}"),
    })
}

/// A whole `GenerateContentResponse`.
pub(crate) fn whole(prompt: &Prompt, answer: &Answer, n: u64) -> Value {
    let text = match answer {
        Answer::Text(t) => t.as_str(),
        Answer::ToolCall { .. } => "",
    };
    let parts = json!([part(answer, text)]);
    response(prompt, n, parts, true, answer.completion_tokens())
}

/// One event per word; the last word's event carries finishReason STOP and the final
/// usage, so it is the finale a cut never reaches. Intermediate events carry running
/// usage, as Gemini's do, which a client must not add up.
pub(crate) fn script(prompt: &Prompt, answer: &Answer, n: u64) -> Script {
    let mut events: Vec<Event> = match answer {
        Answer::Text(text) => {
            let pieces = answer::pieces(text);
            let last = pieces.len().saturating_sub(1);
            let mut so_far = 0;
            pieces
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    so_far += answer::words(p);
                    let r = response(prompt, n, json!([part(answer, p)]), i == last, so_far);
                    Event::json("", &r)
                })
                .collect()
        }
        Answer::ToolCall { .. } => vec![Event::json("", &whole(prompt, answer, n))],
    };
    // An empty answer still ends with a finishing event.
    let finale = match events.pop() {
        Some(e) => vec![e],
        None => vec![Event::json("", &whole(prompt, answer, n))],
    };
    Script {
        framing: Framing::Gemini,
        preamble: vec![],
        content: events,
        finale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_reads_model_and_method() {
        assert_eq!(
            target("/v1beta/models/mock-slow-5ms%2Bstream-cut-2:streamGenerateContent"),
            Some((
                "mock-slow-5ms+stream-cut-2".to_owned(),
                "streamGenerateContent"
            ))
        );
        assert_eq!(
            target("/v1/models/gemini-2.0-flash:generateContent"),
            Some(("gemini-2.0-flash".to_owned(), "generateContent"))
        );
        assert_eq!(target("/v1beta/models"), None);
    }
}
