//! Shared helpers for integration tests (each test crate uses what it needs).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod peer;
pub mod rig;
