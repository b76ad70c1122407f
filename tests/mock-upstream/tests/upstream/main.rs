//! End-to-end tests of the mock upstream over real HTTP on loopback, one module per
//! provider plus the knobs and the request record.

mod common;

mod anthropic;
mod gemini;
mod knobs;
mod openai;
mod recording;
