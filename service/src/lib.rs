//! `torus-node`: a Torus-style threshold key node.
//!
//! * [`app`]: the consensus state machine (dealer sets, public keys, key
//!   assignment, epoch hand-over), independent of the engine that orders it.
//! * [`tx`], [`records`], [`codec`]: compact versioned encodings (fuzzed).
//! * [`crypto`], [`hexfmt`]: the spec's signatures, ECIES and text encodings.
//! * With the `server` feature (default): [`store`] (LMDB), [`rpc`] (client
//!   JSON-RPC), [`verifier`] (OIDC), [`abci`], [`grpc`], [`metrics`], [`node`].
//! * With `server`: [`bft`] (the embedded malachite engine) and the shared
//!   [`mempool`] (its sans-IO pool and admission rule build without it).
//! * With the `eth` feature (default): [`chain`], the NodeList contract on Ethereum.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

#[cfg(feature = "server")]
pub mod abci;
pub mod app;
#[cfg(feature = "server")]
pub mod bft;
#[cfg(feature = "eth")]
pub mod chain;
#[cfg(feature = "server")]
pub mod client;
pub mod codec;
#[cfg(feature = "server")]
pub mod config;
pub mod crypto;
#[cfg(feature = "server")]
pub mod devnet;
#[cfg(feature = "server")]
pub mod failpoint;
#[cfg(feature = "server")]
pub mod grpc;
pub mod hexfmt;
pub mod jrpc;
#[cfg(feature = "server")]
pub mod keygen;
pub mod mempool;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod node;
pub mod p2p;
#[cfg(feature = "server")]
pub mod rpc;
#[cfg(feature = "server")]
pub mod runner;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tx;

#[cfg(feature = "server")]
pub mod verifier;
