//! The wire protocol between nodes and clients: length-delimited frames over `turmoil::net` TCP,
//! postcard-encoded messages, requests from nodes signed with the sender's ed25519 key, and a
//! timeout on every connect and call.

mod chain_message;
mod client;
mod frame;
mod message;
mod signing;

#[cfg(test)]
mod fuzz;

pub use chain_message::{ChainRequest, ChainResponse, EventPage};
pub use client::{call, CallTimeouts, Pool};
pub use frame::{codec, decode, encode, WireError};
pub use message::{Envelope, Request, Response, ServiceError};
pub use signing::{node_keypair, verify_envelope, NodeKey};

/// The TCP port every storage node listens on.
pub const NODE_PORT: u16 = 9000;

/// The chain host's name and port.
pub const CHAIN_HOST: &str = "chain";
pub const CHAIN_PORT: u16 = 9100;
