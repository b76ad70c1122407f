//! End-to-end tests, one binary, one module per feature.

mod e2e {
    mod auth;
    mod cache;
    mod errors;
    mod fallback;
    mod faults;
    mod filters;
    mod gateway;
    mod governance;
    mod http;
    mod load;
    mod openai_node;
    mod openai_sdk;
    mod pipeline;
    mod providers;
    mod reload;
    mod routers;
    mod sandbox;
    mod startup;
}
