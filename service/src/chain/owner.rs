//! The operator's side of the contract: deploy it, open epochs, whitelist nodes, start PSS.

use alloy::network::ReceiptResponse;
use alloy::primitives::U256;
use alloy::providers::DynProvider;

use super::{bindings::NodeList, node_address, parse_address, ChainError, Endpoint};
use crate::crypto::NodeKey;

/// Deploys the embedded NodeList contract from `owner`'s account (which becomes its owner
/// and pays the gas) and returns its address.
pub async fn deploy(rpc_url: &str, owner: &NodeKey) -> Result<super::Address, ChainError> {
    let endpoint = Endpoint::new(rpc_url)?;
    let provider = endpoint.signing(owner)?;
    let receipt = endpoint
        .transact(
            "constructor",
            super::Address::ZERO,
            NodeList::deploy_builder(&provider),
        )
        .await?;
    receipt.contract_address().ok_or_else(|| ChainError::Rpc {
        call: "constructor",
        detail: "the deployment receipt has no contract address".into(),
    })
}

/// An epoch as the owner sets it with `updateEpoch` (the whole entry is replaced: pass the
/// current `nodes` to change only the parameters or the neighbours).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochUpdate {
    /// Epoch number (not 0).
    pub epoch: u64,
    /// Committee size.
    pub n: u32,
    /// Reconstruction threshold.
    pub k: u32,
    /// Tolerated faults.
    pub t: u32,
    /// The node list (usually empty: nodes list themselves).
    pub nodes: Vec<super::Address>,
    /// Previous epoch (0 = none).
    pub prev: u64,
    /// Next epoch (0 = none yet).
    pub next: u64,
}

/// The contract owner's operations, signed with the owner's key.
#[derive(Clone, Debug)]
pub struct NodeListOwner {
    endpoint: Endpoint,
    provider: DynProviderDebug,
    contract: super::Address,
    owner: super::Address,
}

/// A signing provider (no `Debug` of its own; the key stays out of logs).
#[derive(Clone)]
struct DynProviderDebug(DynProvider);

impl std::fmt::Debug for DynProviderDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<signing provider>")
    }
}

impl NodeListOwner {
    /// The owner `key` of the contract at `contract`, through `rpc_url`.
    pub fn new(rpc_url: &str, contract: &str, key: &NodeKey) -> Result<Self, ChainError> {
        let endpoint = Endpoint::new(rpc_url)?;
        let provider = DynProviderDebug(endpoint.signing(key)?);
        Ok(NodeListOwner {
            endpoint,
            provider,
            contract: parse_address(contract)?,
            owner: node_address(&key.public()),
        })
    }

    /// The owner's address (the account that signs).
    pub fn address(&self) -> super::Address {
        self.owner
    }

    fn instance(&self) -> NodeList::NodeListInstance<&DynProvider> {
        NodeList::new(self.contract, &self.provider.0)
    }

    /// `updateEpoch(epoch, n, k, t, nodes, prev, next)`.
    pub async fn update_epoch(&self, e: &EpochUpdate) -> Result<(), ChainError> {
        let c = self.instance();
        let call = c.updateEpoch(
            U256::from(e.epoch),
            U256::from(e.n),
            U256::from(e.k),
            U256::from(e.t),
            e.nodes.clone(),
            U256::from(e.prev),
            U256::from(e.next),
        );
        self.endpoint
            .transact("updateEpoch", self.contract, call)
            .await
            .map(drop)
    }

    /// `updateWhitelist(epoch, node, allowed)`.
    pub async fn update_whitelist(
        &self,
        epoch: u64,
        node: super::Address,
        allowed: bool,
    ) -> Result<(), ChainError> {
        let c = self.instance();
        let call = c.updateWhitelist(U256::from(epoch), node, allowed);
        self.endpoint
            .transact("updateWhitelist", self.contract, call)
            .await
            .map(drop)
    }

    /// `updatePssStatus(old, new, status)`; 1 tells the old committee to reshare to the new.
    pub async fn update_pss_status(
        &self,
        old: u64,
        new: u64,
        status: u64,
    ) -> Result<(), ChainError> {
        let c = self.instance();
        let call = c.updatePssStatus(U256::from(old), U256::from(new), U256::from(status));
        self.endpoint
            .transact("updatePssStatus", self.contract, call)
            .await
            .map(drop)
    }

    /// `transferOwnership(new_owner)`.
    pub async fn transfer_ownership(&self, new_owner: super::Address) -> Result<(), ChainError> {
        let c = self.instance();
        let call = c.transferOwnership(new_owner);
        self.endpoint
            .transact("transferOwnership", self.contract, call)
            .await
            .map(drop)
    }
}
