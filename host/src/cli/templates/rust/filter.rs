//! {{name}}: a Switchyard filter. Refuses requests whose user messages contain a
//! configured word (case-insensitive), before anything is sent upstream.
//!
//! Config (`[plugins.{{name}}] config = { words = ["project zeus"] }`).

use serde::Deserialize;
use switchyard_sdk::filter::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    words: Vec<String>,
}

#[derive(Default)]
struct Plugin;

impl Filter for Plugin {
    fn on_request(
        &mut self,
        ctx: RequestContext,
        request: ChatRequest,
    ) -> Result<RequestOutcome, PluginError> {
        let config: Config = switchyard_sdk::config()?;
        let verdict = match blocked(&config, &request) {
            Some(word) => {
                switchyard_sdk::log(
                    host::Level::Info,
                    &format!("request {} refused: contains {word:?}", ctx.request_id),
                );
                RequestVerdict::Deny(Denial {
                    status: 400,
                    code: "content_policy_violation".into(),
                    message: "The request contains a blocked word.".into(),
                })
            }
            None => RequestVerdict::Allow,
        };
        Ok(RequestOutcome {
            verdict,
            constraints: None,
        })
    }
}

/// The first configured word a user message contains.
fn blocked<'a>(config: &'a Config, request: &ChatRequest) -> Option<&'a str> {
    let texts = request
        .messages
        .iter()
        .filter(|m| matches!(m.role, Role::User))
        .flat_map(|m| &m.content)
        .filter_map(|p| match p {
            ContentPart::Text(t) => Some(t.to_lowercase()),
            _ => None,
        });
    for text in texts {
        if let Some(w) = config.words.iter().find(|w| text.contains(&w.to_lowercase())) {
            return Some(w);
        }
    }
    None
}

switchyard_sdk::export_filter!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::request;

    #[test]
    fn user_messages_with_a_word_are_blocked_and_others_pass() {
        let config = Config {
            words: vec!["Project Zeus".into()],
        };
        let hit = request(&[(Role::User, "tell me about PROJECT ZEUS")]);
        assert_eq!(blocked(&config, &hit), Some("Project Zeus"));
        let system = request(&[(Role::System, "project zeus"), (Role::User, "hi")]);
        assert_eq!(blocked(&config, &system), None, "only user text is checked");
    }

    #[test]
    fn a_typo_in_the_config_is_an_error_naming_it() {
        let e = switchyard_sdk::parse_config::<Config>(r#"{"word": ["x"]}"#).unwrap_err();
        assert!(e.message.contains("word"), "{}", e.message);
    }
}
