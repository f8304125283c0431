//! A webhook receiver on 127.0.0.1 for `make dev`, the tests and the bench. It verifies the
//! Standard Webhooks signature the way a receiver following the specification would (its own
//! code, not Meterbell's signer), records every request, and answers as scripted: a status, or
//! silence for a while (to force a timeout).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    Status(u16),
    /// A status with a body (e.g. an AWS error document).
    Body(u16, &'static str),
    /// A redirect to this location.
    Redirect(u16, &'static str),
    /// Say nothing for this long, then 200 (the sender should have given up by then).
    Hang(Duration),
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub id: Option<String>,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    pub body: String,
    /// The signature verified against the secret set with [`Receiver::set_secret`].
    pub verified: bool,
    pub at: Instant,
    /// Wall-clock arrival, milliseconds since the epoch (for latencies from other clocks).
    pub at_ms: i64,
    pub answered: u16,
}

#[derive(Default)]
struct State {
    secret: Option<Vec<u8>>,
    script: VecDeque<Reply>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
}

/// Whether `signature` (`v1,<b64> v1,<b64>...`) holds a valid HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` under `key`, with the timestamp within five minutes of now.
pub fn verify(key: &[u8], id: &str, timestamp: &str, body: &str, signature: &str) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 {
        return false;
    }
    signature.split(' ').any(|candidate| {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            return false;
        };
        let Ok(given) = STANDARD.decode(encoded) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return false;
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        mac.verify_slice(&given).is_ok()
    })
}

impl Receiver {
    /// Listens on 127.0.0.1:`port` (0 for any free port).
    pub async fn start(port: u16) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let receiver = Receiver {
            addr: listener.local_addr()?,
            state: Arc::new(Mutex::new(State::default())),
            arrived: Arc::new(Notify::new()),
        };
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let r = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let r = r.clone();
                        async move { Ok::<_, Infallible>(r.answer(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(receiver)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The `whsec_...` secret signatures are checked against.
    pub fn set_secret(&self, secret: &str) {
        let key = secret
            .strip_prefix("whsec_")
            .and_then(|k| STANDARD.decode(k).ok());
        if let Ok(mut s) = self.state.lock() {
            s.secret = key;
        }
    }

    /// The next requests get these answers, in order; after them, 204.
    pub fn script(&self, replies: &[Reply]) {
        if let Ok(mut s) = self.state.lock() {
            s.script = replies.iter().copied().collect();
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }

    /// Waits until `n` requests have arrived, or `timeout`; returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            let _ =
                tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), notified)
                    .await;
        }
    }

    async fn answer(&self, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (id, timestamp, signature) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        );
        let path = req.uri().path().to_owned();
        let body = match req.into_body().collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            Err(_) => String::new(),
        };
        let at = Instant::now();
        let at_ms = chrono::Utc::now().timestamp_millis();
        let (reply, key) = match self.state.lock() {
            Ok(mut s) => (
                s.script.pop_front().unwrap_or(Reply::Status(204)),
                s.secret.clone(),
            ),
            Err(_) => (Reply::Status(500), None),
        };
        let verified = match (&key, &id, &timestamp, &signature) {
            (Some(k), Some(i), Some(t), Some(sig)) => verify(k, i, t, &body, sig),
            _ => false,
        };
        let mut location = None;
        let (status, reply_body) = match reply {
            Reply::Status(code) => (code, ""),
            Reply::Body(code, text) => (code, text),
            Reply::Redirect(code, to) => {
                location = Some(to);
                (code, "")
            }
            Reply::Hang(d) => {
                tokio::time::sleep(d).await;
                (200, "")
            }
        };
        if let Ok(mut s) = self.state.lock() {
            s.received.push(Received {
                path,
                id,
                timestamp,
                signature,
                body,
                verified,
                at,
                at_ms,
                answered: status,
            });
        }
        self.arrived.notify_waiters();
        let mut response =
            hyper::Response::new(Full::new(Bytes::from_static(reply_body.as_bytes())));
        *response.status_mut() =
            hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
        if let Some(to) = location {
            response.headers_mut().insert(
                hyper::header::LOCATION,
                hyper::header::HeaderValue::from_static(to),
            );
        }
        response
    }
}
