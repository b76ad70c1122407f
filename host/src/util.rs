//! Small pieces shared by several modules that no crate provides as needed.

pub mod fswatch;
