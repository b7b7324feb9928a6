//! The test kit (cargo feature `testkit`, never in a production build): what the
//! integration tests and `torus-bench` run nodes with in one process.
//!
//! * [`Cluster`]: n node services on loopback, each with its own LMDB directory
//!   and HTTP server, keys from the engine's batch DKG run in process, and a
//!   development OIDC issuer.
//! * [`LocalOrderer`]: the mock consensus that applies the same ordered blocks to
//!   every attached node and checks that their app hashes agree.

mod cluster;
mod orderer;

pub use crate::verifier::{DEV_AUDIENCE, DEV_VERIFIER};
pub use cluster::{Cluster, ClusterError, ConfigTweak};
pub use orderer::{LocalOrderer, OrdererHandle};
