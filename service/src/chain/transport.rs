//! JSON-RPC over HTTP(S) for alloy, through the crate's own reqwest 0.12 client (rustls).
//!
//! alloy's HTTP transport brings reqwest 0.13 and, for HTTPS, a second TLS stack; this
//! transport reuses the client the verifiers already build, so the `eth` feature adds no
//! HTTP or TLS crates.

use std::task::{Context, Poll};
use std::time::Duration;

use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket};
use alloy::transports::{TransportError, TransportErrorKind, TransportFut};

/// How long an idle connection is kept for reuse.
const POOL_IDLE: Duration = Duration::from_secs(3);

/// An error and its causes on one line (reqwest's own text omits the cause).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A tower service that posts JSON-RPC packets to one URL.
#[derive(Clone, Debug)]
pub(crate) struct HttpTransport {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl HttpTransport {
    /// A transport to `url` with a per-request time limit.
    pub(crate) fn new(url: reqwest::Url, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // Servers drop idle keep-alive connections (Node's http after 5 s, ganache after
            // about 10 s); a request sent on one just as it closes fails. Reusing only
            // connections idle for less than that avoids the race.
            .pool_idle_timeout(POOL_IDLE)
            .build()?;
        Ok(HttpTransport { client, url })
    }

    async fn post(self, req: RequestPacket) -> Result<ResponsePacket, TransportError> {
        let resp = self
            .client
            .post(self.url)
            .json(&req)
            .send()
            .await
            .map_err(|e| TransportErrorKind::custom_str(&with_causes(&e)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| TransportErrorKind::custom_str(&with_causes(&e)))?;
        if !status.is_success() {
            // An error answer may still be a JSON-RPC error object (some nodes send reverts
            // with a 4xx/5xx status); keep it when it parses, else report the HTTP status.
            if let Ok(packet) = serde_json::from_slice::<ResponsePacket>(&body) {
                return Ok(packet);
            }
            return Err(TransportErrorKind::http_error(
                status.as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        serde_json::from_slice(&body)
            .map_err(|e| TransportError::deser_err(e, String::from_utf8_lossy(&body)))
    }
}

impl tower::Service<RequestPacket> for HttpTransport {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // reqwest's client has no back-pressure of its own.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        Box::pin(self.clone().post(req))
    }
}
