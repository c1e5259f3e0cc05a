//! What the engine and the transport edge say to each other (commands, events, link state).

pub mod types;

pub use types::{
    CmdKind, ConnState, DesiredParams, ParamUpdate, ServerMessage, TransportCmd, TransportEvent,
};
