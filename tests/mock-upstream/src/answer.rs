//! What the mock "model" says, independent of any wire format: the echo, lorem-ipsum
//! words or a tool call, plus the deterministic token counts and the way an answer is cut
//! into stream events.

use crate::behavior::Behavior;

/// The provider-neutral view of a request that the answer depends on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prompt {
    /// The body's `model`, or the path's model for Gemini.
    pub model: String,
    /// Text parts of the last user message, joined with a space.
    pub last_user_text: String,
    /// Whitespace-separated words of all input text.
    pub prompt_tokens: u64,
    /// Name of the first tool the request offers.
    pub first_tool: Option<String>,
    /// The client asked for server-sent events.
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`: add a usage chunk before `[DONE]`.
    pub include_usage: bool,
}

/// The tool name used when `mock-tool-call` meets a request that offers no tool.
const FALLBACK_TOOL: &str = "mock_tool";

const LOREM: [&str; 19] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Text(String),
    /// `arguments` is JSON text, as OpenAI carries it.
    ToolCall {
        name: String,
        arguments: String,
    },
}

impl Answer {
    pub(crate) fn choose(behavior: &Behavior, prompt: &Prompt) -> Answer {
        if behavior.tool_call {
            let name = prompt
                .first_tool
                .clone()
                .unwrap_or_else(|| FALLBACK_TOOL.to_owned());
            let arguments = serde_json::json!({ "query": prompt.last_user_text }).to_string();
            Answer::ToolCall { name, arguments }
        } else if let Some(n) = behavior.words {
            Answer::Text(lorem(n))
        } else {
            Answer::Text(format!("echo: {}", prompt.last_user_text))
        }
    }

    pub(crate) fn completion_tokens(&self) -> u64 {
        match self {
            Answer::Text(t) => words(t),
            Answer::ToolCall { arguments, .. } => words(arguments),
        }
    }

    /// The tool call's arguments as a JSON value (Anthropic `input`, Gemini `args`).
    pub(crate) fn arguments_value(arguments: &str) -> serde_json::Value {
        serde_json::from_str(arguments).unwrap_or_else(|_| serde_json::json!({}))
    }
}

/// The text of a message's content: a string, or the text parts of an array of parts
/// (OpenAI `{type:"text",text}`, Anthropic text blocks, Gemini `{text}` parts) joined with
/// a space. Images, tool calls and tool results carry no text here.
pub(crate) fn text_of(content: &serde_json::Value) -> String {
    match content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter(|p| p.get("type").is_none_or(|t| t == "text"))
            .filter_map(|p| p.get("text").and_then(serde_json::Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The text of the last user turn that has any: a turn that only carries tool results
/// is skipped, so a tool loop still echoes the question.
pub(crate) fn last_user_text<'a>(
    turns: impl DoubleEndedIterator<Item = (&'a str, &'a serde_json::Value)>,
) -> String {
    turns
        .rev()
        .filter(|(role, _)| *role == "user")
        .map(|(_, content)| text_of(content))
        .find(|t| !t.is_empty())
        .unwrap_or_default()
}

/// The mock's token count: whitespace-separated words, so tests can predict it.
pub(crate) fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// `n` words cycling through lorem ipsum.
pub(crate) fn lorem(n: usize) -> String {
    let mut out = String::with_capacity(n * 7);
    for (i, w) in LOREM.iter().cycle().take(n).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Word-sized stream pieces, each a word with the whitespace before it, so that their
/// concatenation is exactly `text` (a client that joins deltas gets the full answer).
pub(crate) fn pieces(text: &str) -> Vec<&str> {
    // Cut before each whitespace run that follows a word; trailing whitespace stays with
    // the last word so that no event is blank.
    let mut cuts = vec![0];
    let mut prev_word = false;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space && prev_word && i > 0 {
            cuts.push(i);
        }
        prev_word = !space;
    }
    if !prev_word && cuts.len() > 1 {
        cuts.pop();
    }
    cuts.push(text.len());
    cuts.windows(2)
        .map(|w| &text[w[0]..w[1]])
        .filter(|p| !p.is_empty())
        .collect()
}

/// Tool-argument fragments the way providers stream them: fixed-size cuts that land
/// anywhere, mid-string and mid-token, and always at least two of them so that a client
/// that forgets to concatenate is caught.
pub(crate) fn fragments(json: &str) -> Vec<&str> {
    let chars = json.chars().count();
    let size = (chars / 2).clamp(1, 8);
    let mut out = Vec::new();
    let mut start = 0;
    for (n, (i, _)) in json.char_indices().enumerate() {
        if n > 0 && n % size == 0 {
            out.push(&json[start..i]);
            start = i;
        }
    }
    if start < json.len() {
        out.push(&json[start..]);
    }
    out
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_rejoin_to_the_text() {
        for text in [
            "echo: hello world",
            "  lead and  double spaces\n",
            "one",
            "",
            "é à  ü",
        ] {
            let p = pieces(text);
            assert_eq!(p.concat(), text);
            assert!(p.len() as u64 <= words(text).max(1));
        }
        assert_eq!(pieces("echo: hi there"), ["echo:", " hi", " there"]);
    }

    #[test]
    fn fragments_cut_mid_token_and_rejoin() {
        let args = r#"{"query":"hello world"}"#;
        let f = fragments(args);
        assert!(f.len() >= 2);
        assert_eq!(f.concat(), args);
        assert_eq!(fragments(r#"{"query":""}"#).len(), 2);
    }

    #[test]
    fn lorem_cycles() {
        assert_eq!(lorem(3), "lorem ipsum dolor");
        assert_eq!(words(&lorem(100)), 100);
        assert_eq!(lorem(0), "");
    }

    #[test]
    fn tool_call_falls_back_to_a_name_and_quotes_the_text() {
        let prompt = Prompt {
            last_user_text: "say \"hi\"".into(),
            ..Prompt::default()
        };
        let a = Answer::choose(&Behavior::parse("mock-tool-call"), &prompt);
        assert_eq!(
            a,
            Answer::ToolCall {
                name: FALLBACK_TOOL.into(),
                arguments: r#"{"query":"say \"hi\""}"#.into()
            }
        );
    }
}
