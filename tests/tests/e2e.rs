//! End-to-end tests, one binary, one module per feature.

mod e2e {
    mod cache;
    mod http;
    mod load;
    mod reload;
    mod sandbox;
}
