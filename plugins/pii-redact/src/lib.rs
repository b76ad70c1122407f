//! The `pii-redact` filter: finds email addresses, payment card numbers, US social
//! security numbers, IBANs and international phone numbers in prompts and answers, and
//! replaces them with `[REDACTED:KIND]` (or refuses the request, in `deny` mode).
//!
//! Scanned: the text of user, system, developer and tool messages on the way in, and the
//! answer and reasoning text on the way out, streamed or not. Tool-call arguments are
//! left alone: the application needs them intact to act on the call.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod detect;
mod stream;

use switchyard_sdk::filter::*;

use config::{Config, Mode};
use detect::{Kinds, redact};

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
                found = found.union(redact_parts(&mut m.content, config.kinds));
            }
        }
        let verdict = if found.is_empty() {
            RequestVerdict::Allow
        } else if config.mode == Mode::Deny {
            RequestVerdict::Deny(denial(found))
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
            found = found.union(redact_parts(&mut m.content, config.kinds));
            if let Some(reasoning) = &mut m.reasoning {
                found = found.union(redact_text(reasoning, config.kinds));
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
            Ok(config) => Box::new(stream::redactor(config.kinds)),
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
fn redact_parts(parts: &mut [ContentPart], kinds: Kinds) -> Kinds {
    parts
        .iter_mut()
        .fold(Kinds::default(), |found, part| match part {
            ContentPart::Text(text) => found.union(redact_text(text, kinds)),
            _ => found,
        })
}

fn redact_text(text: &mut String, kinds: Kinds) -> Kinds {
    match redact(text, kinds) {
        Some((clean, found)) => {
            *text = clean;
            found
        }
        None => Kinds::default(),
    }
}

/// The refusal names the kinds found, never the values: the message is shown to the
/// client and may be logged.
fn denial(found: Kinds) -> Denial {
    let kinds: Vec<&str> = found.iter().map(|k| k.describe()).collect();
    Denial {
        status: 400,
        code: "pii_detected".into(),
        message: format!(
            "the request contains personal data ({}); remove it and try again",
            kinds.join(", ")
        ),
    }
}

switchyard_sdk::export_filter!(PiiRedact);
