//! One Ethereum JSON-RPC endpoint: the read-only provider, signed transactions,
//! and revert data decoded into [`ChainError`]s.

use std::time::Duration;

use alloy::network::{EthereumWallet, ReceiptResponse};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::RpcClient;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolInterface;
use alloy::transports::{RpcError, TransportErrorKind};

use super::bindings::NodeList;
use super::{transport, Address, ChainError, Receipt, DEFAULT_TX_TIMEOUT, REQUEST_TIMEOUT};
use crate::crypto::NodeKey;

pub(super) fn parse_url(s: &str) -> Result<reqwest::Url, ChainError> {
    let url = reqwest::Url::parse(s).map_err(|e| ChainError::Invalid {
        what: "Ethereum RPC URL",
        problem: format!("{s:?}: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ChainError::Invalid {
            what: "Ethereum RPC URL",
            problem: format!("{s:?} is not http:// or https://"),
        });
    }
    Ok(url)
}

/// A connection to one endpoint: the read-only provider plus what writes need.
#[derive(Clone)]
pub(super) struct Endpoint {
    pub(super) url: reqwest::Url,
    pub(super) provider: DynProvider,
    pub(super) tx_timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub(super) fn new(rpc_url: &str) -> Result<Self, ChainError> {
        let url = parse_url(rpc_url)?;
        let provider = ProviderBuilder::new()
            .connect_client(rpc_client(&url)?)
            .erased();
        Ok(Endpoint {
            url,
            provider,
            tx_timeout: DEFAULT_TX_TIMEOUT,
        })
    }

    /// A provider that signs and sends with `key` (nonce, gas and chain id filled in).
    ///
    /// The nonce is read from the chain for every transaction (alloy's default caches it,
    /// and a send that fails at gas estimation, such as a revert, would leave the cache one
    /// ahead: every later transaction would wait forever in the pool). Writes from one key
    /// are therefore sequential: each waits for its receipt.
    pub(super) fn signing(&self, key: &NodeKey) -> Result<DynProvider, ChainError> {
        let secret = key.to_bytes();
        let signer =
            PrivateKeySigner::from_slice(secret.as_slice()).map_err(|e| ChainError::Invalid {
                what: "signing key",
                problem: e.to_string(),
            })?;
        Ok(ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_client(rpc_client(&self.url)?)
            .erased())
    }

    pub(super) fn rpc_error(
        &self,
        call: &'static str,
        e: RpcError<TransportErrorKind>,
    ) -> ChainError {
        match &e {
            RpcError::Transport(_) => ChainError::Unreachable {
                url: self.url.to_string(),
                detail: e.to_string(),
            },
            RpcError::ErrorResp(payload) => match payload.as_revert_data() {
                Some(data) => reverted(call, &data),
                None => ChainError::Rpc {
                    call,
                    detail: e.to_string(),
                },
            },
            _ => ChainError::Rpc {
                call,
                detail: e.to_string(),
            },
        }
    }

    pub(super) fn contract_error(
        &self,
        call: &'static str,
        contract: Address,
        e: alloy::contract::Error,
    ) -> ChainError {
        use alloy::contract::Error as E;
        match e {
            E::TransportError(t) => self.rpc_error(call, t),
            E::ZeroData(..) => ChainError::NotAContract { address: contract },
            E::PendingTransactionError(p) => ChainError::Rpc {
                call,
                detail: p.to_string(),
            },
            other => ChainError::Rpc {
                call,
                detail: other.to_string(),
            },
        }
    }

    /// Sends a transaction, waits for its receipt and checks that it succeeded.
    pub(super) async fn transact<P, D>(
        &self,
        call: &'static str,
        contract: Address,
        builder: alloy::contract::CallBuilder<P, D>,
    ) -> Result<Receipt, ChainError>
    where
        P: Provider,
        D: alloy::contract::CallDecoder,
    {
        let pending = builder
            .send()
            .await
            .map_err(|e| self.contract_error(call, contract, e))?;
        let receipt = pending
            .with_timeout(Some(self.tx_timeout))
            .get_receipt()
            .await
            .map_err(|e| ChainError::Rpc {
                call,
                detail: e.to_string(),
            })?;
        if !receipt.status() {
            return Err(ChainError::Reverted {
                call,
                error: "unknown".into(),
                reason: format!("transaction {} failed on chain", receipt.transaction_hash()),
            });
        }
        Ok(receipt)
    }
}

fn rpc_client(url: &reqwest::Url) -> Result<RpcClient, ChainError> {
    let transport = transport::HttpTransport::new(url.clone(), REQUEST_TIMEOUT).map_err(|e| {
        ChainError::Invalid {
            what: "HTTP client",
            problem: e.to_string(),
        }
    })?;
    let local = alloy::transports::utils::guess_local_url(url.as_str());
    Ok(RpcClient::new(transport, local))
}

/// Decodes revert data: the contract's own errors, then `Error(string)` and `Panic(uint256)`.
fn reverted(call: &'static str, data: &[u8]) -> ChainError {
    use NodeList::NodeListErrors as E;
    let (error, reason) = match E::abi_decode(data) {
        Ok(e) => {
            let reason = match &e {
                E::NotOwner(x) => format!("{} is not the contract owner", x.caller),
                E::ZeroOwner(_) => "the new owner is the zero address".to_string(),
                E::ZeroEpoch(_) => "epoch 0 is reserved".to_string(),
                E::EpochNotFound(x) => format!("epoch {} does not exist", x.epoch),
                E::NotWhitelisted(x) => {
                    format!("{} is not whitelisted for epoch {}", x.node, x.epoch)
                }
                E::AlreadyRegistered(x) => {
                    format!("{} is already listed in epoch {}", x.node, x.epoch)
                }
                E::EpochFull(x) => format!("epoch {} already has its {} nodes", x.epoch, x.n),
                E::NotCallersKey(x) => format!(
                    "the public key belongs to {}, not to the caller {}",
                    x.keyAddress, x.caller
                ),
            };
            let name = match &e {
                E::NotOwner(_) => "NotOwner",
                E::ZeroOwner(_) => "ZeroOwner",
                E::ZeroEpoch(_) => "ZeroEpoch",
                E::EpochNotFound(_) => "EpochNotFound",
                E::NotWhitelisted(_) => "NotWhitelisted",
                E::AlreadyRegistered(_) => "AlreadyRegistered",
                E::EpochFull(_) => "EpochFull",
                E::NotCallersKey(_) => "NotCallersKey",
            };
            (name.to_string(), format!("{name}: {reason}"))
        }
        Err(_) => match alloy::sol_types::decode_revert_reason(data) {
            Some(text) if data.starts_with(&[0x4e, 0x48, 0x7b, 0x71]) => ("Panic".into(), text),
            Some(text) => ("Error".into(), text),
            None => (
                "unknown".into(),
                format!("unrecognised revert data 0x{}", hex::encode(data)),
            ),
        },
    };
    ChainError::Reverted {
        call,
        error,
        reason,
    }
}
