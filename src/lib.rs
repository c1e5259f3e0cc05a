//! scope-deck: a terminal controller that plays real-time AI video like an instrument.
//!
//! Layout (see docs/architecture.md): a pure [`core`] (state, actions, reducer, effects,
//! snapshot) surrounded by thin edges: [`audio`], [`controls`], [`transport`], [`video`] and the
//! front ends in [`ui`], wired together by [`app`].
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod app;
pub mod audio;
pub mod cli;
pub mod config;
pub mod controls;
pub mod core;
pub mod edge_thread;
pub mod logging;
pub mod mapping;
pub mod record;
pub mod service;
pub mod tempo;
pub mod transport;
pub mod ui;
pub mod video;
