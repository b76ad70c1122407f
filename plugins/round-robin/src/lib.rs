//! test
use switchyard_sdk::router::*;
struct RoundRobin;
impl Router for RoundRobin {}
switchyard_sdk::export_router!(RoundRobin);
