//! The `pii-redact` filter: finds email addresses, payment card numbers, US social
//! security numbers, IBANs, international phone numbers, API keys, JSON web tokens and
//! private keys in prompts and answers, and per kind replaces them with
//! `[REDACTED:KIND]`, masks them (`**** **** **** 1111`) or refuses the request.
//!
//! Scanned: the text of user, system, developer and tool messages on the way in, and the
//! answer and reasoning text on the way out, streamed or not. Tool-call arguments are
//! left alone: the application needs them intact to act on the call.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod detect;
mod secrets;
mod stream;

use switchyard_sdk::filter::*;

use config::Config;
use detect::{Kinds, Rules, redact};

/// One request's filter: the config is read on its first call and kept for the rest.
#[derive(Default)]
struct PiiRedact {
    config: Option<Config>,
}

impl PiiRedact {
    fn config(&mut self) -> Result<Config, PluginError> {
        match self.config {
            Some(config) => Ok(config),
            None => Ok(*self.config.insert(Config::read()?)),
        }
    }
}

impl Filter for PiiRedact {
    fn on_request(
        &mut self,
        _ctx: RequestContext,
        mut request: ChatRequest,
    ) -> Result<RequestOutcome, PluginError> {
        let config = self.config()?;
        let mut found = Kinds::default();
        for m in &mut request.messages {
            if matches!(
                m.role,
                Role::User | Role::System | Role::Developer | Role::Tool
            ) {
                found = found.union(redact_parts(&mut m.content, &config.rules));
            }
        }
        let verdict = if found.is_empty() {
            RequestVerdict::Allow
        } else if config.rules.denies(found) {
            RequestVerdict::Deny(denial(found, &config.rules))
        } else {
            RequestVerdict::Rewrite(request)
        };
        Ok(RequestOutcome {
            verdict,
            constraints: None,
        })
    }

    fn on_response(
        &mut self,
        _ctx: RequestContext,
        mut response: ChatResponse,
    ) -> Result<ResponseVerdict, PluginError> {
        let config = self.config()?;
        let mut found = Kinds::default();
        for choice in &mut response.choices {
            let m = &mut choice.message;
            found = found.union(redact_parts(&mut m.content, &config.rules));
            if let Some(reasoning) = &mut m.reasoning {
                found = found.union(redact_text(reasoning, &config.rules));
            }
        }
        Ok(if found.is_empty() {
            ResponseVerdict::Allow
        } else {
            ResponseVerdict::Rewrite(response)
        })
    }

    fn open_stream(&mut self, _ctx: RequestContext) -> Box<dyn StreamFilter> {
        match self.config() {
            Ok(config) => Box::new(stream::redactor(config.rules)),
            Err(err) => Box::new(Broken(err)),
        }
    }
}

/// The stream filter when the config is broken: a compliance filter fails closed.
struct Broken(PluginError);

impl StreamFilter for Broken {
    fn on_chunk(&mut self, _chunk: ChatChunk) -> Result<ChunkVerdict, PluginError> {
        Err(self.0.clone())
    }
}

/// Redacts every text part in place; returns the kinds found.
fn redact_parts(parts: &mut [ContentPart], rules: &Rules) -> Kinds {
    parts
        .iter_mut()
        .fold(Kinds::default(), |found, part| match part {
            ContentPart::Text(text) => found.union(redact_text(text, rules)),
            _ => found,
        })
}

fn redact_text(text: &mut String, rules: &Rules) -> Kinds {
    match redact(text, rules) {
        Some((clean, found)) => {
            *text = clean;
            found
        }
        None => Kinds::default(),
    }
}

/// The refusal names the kinds that are refused, never the values: the message is shown
/// to the client and may be logged.
fn denial(found: Kinds, rules: &Rules) -> Denial {
    let kinds: Vec<&str> = found
        .iter()
        .filter(|k| rules.action(*k) == detect::Action::Deny)
        .map(|k| k.describe())
        .collect();
    Denial {
        status: 400,
        code: "pii_detected".into(),
        message: format!(
            "the request contains data that may not be sent ({}); remove it and try again",
            kinds.join(", ")
        ),
    }
}

switchyard_sdk::export_filter!(PiiRedact);
