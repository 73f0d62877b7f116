//! The bench's HTTP/1.1 load generator: keep-alive connections on loopback, each driven by the
//! task that sends on it.
//!
//! The load generator shares the two cores with the server, so what it spends per request is
//! taken from the server's share. A pooled client (reqwest) parses a URL, builds its headers
//! and hands every request to a connection task and back; here a request is built from
//! ready-made header values, and the task that sends it also drives its connection (hyper's
//! connection-level API), so an exchange costs one write and one read and wakes no other task.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Body = Full<Bytes>;

/// One keep-alive connection: the sending half and the connection it must poll meanwhile.
struct Conn {
    sender: SendRequest<Body>,
    connection: Pin<Box<Connection<TokioIo<TcpStream>, Body>>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Option<Conn> {
        let stream = TcpStream::connect(addr).await.ok()?;
        stream.set_nodelay(true).ok()?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        Some(Conn {
            sender,
            connection: Box::pin(connection),
        })
    }

    /// Sends `request` and reads the whole answer. `Some(success)` when the connection can carry
    /// the next request; `None` when it failed or closed.
    async fn exchange(&mut self, request: Request<Body>) -> Option<bool> {
        let Conn { sender, connection } = self;
        let exchange = async {
            sender.ready().await.ok()?;
            let response = sender.send_request(request).await.ok()?;
            let success = response.status().is_success();
            response.into_body().collect().await.ok()?;
            Some(success)
        };
        tokio::select! {
            biased;
            outcome = exchange => outcome,
            // The connection ended (the server closed it, or it failed) before the answer.
            _ = connection.as_mut() => None,
        }
    }
}

/// Requests to one server, over as many keep-alive connections as are in flight at once.
pub(crate) struct LoadClient {
    addr: SocketAddr,
    host: HeaderValue,
    authorization: HeaderValue,
    json: HeaderValue,
    idle: Mutex<Vec<Conn>>,
}

impl LoadClient {
    /// A client of the server at `base` (`http://host:port`), authenticating with `secret`.
    pub(crate) fn new(base: &str, secret: &str) -> anyhow::Result<LoadClient> {
        let authority = base
            .strip_prefix("http://")
            .context("the server's address is not http://")?;
        Ok(LoadClient {
            addr: authority
                .parse()
                .with_context(|| format!("parsing the server's address {authority}"))?,
            host: HeaderValue::from_str(authority).context("the server's address as a header")?,
            authorization: HeaderValue::from_str(&format!("Bearer {secret}"))
                .context("the API key as a header")?,
            json: HeaderValue::from_static("application/json"),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// `GET path`; whether the server answered with a success.
    pub(crate) async fn get(&self, path: String) -> bool {
        self.send(Method::GET, path, None, None).await
    }

    /// `POST path` with a JSON body; whether the server answered with a success.
    pub(crate) async fn post(&self, path: String, json: Bytes) -> bool {
        self.send(Method::POST, path, Some(json), None).await
    }

    /// `PUT path` with a JSON body and an `Idempotency-Key`; whether the server answered with a
    /// success.
    pub(crate) async fn put_idempotent(&self, path: String, json: Bytes, key: HeaderValue) -> bool {
        self.send(Method::PUT, path, Some(json), Some(key)).await
    }

    async fn send(
        &self,
        method: Method,
        path: String,
        json: Option<Bytes>,
        key: Option<HeaderValue>,
    ) -> bool {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        if let Some(conn) = idle
            && let Some(success) = self.exchange_on(conn, &method, &path, &json, &key).await
        {
            return success;
        }
        // No idle connection, or a kept-alive one the server had closed (hyper's server drops
        // one that stays idle past its header timeout, as between phases): a new one.
        match Conn::open(self.addr).await {
            Some(conn) => self
                .exchange_on(conn, &method, &path, &json, &key)
                .await
                .unwrap_or(false),
            None => false,
        }
    }

    /// One exchange on `conn`, which goes back to the idle ones if it can carry another.
    async fn exchange_on(
        &self,
        mut conn: Conn,
        method: &Method,
        path: &str,
        json: &Option<Bytes>,
        key: &Option<HeaderValue>,
    ) -> Option<bool> {
        let Some(request) = self.request(method, path, json, key) else {
            return Some(false);
        };
        let success = conn.exchange(request).await?;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        Some(success)
    }

    fn request(
        &self,
        method: &Method,
        path: &str,
        json: &Option<Bytes>,
        key: &Option<HeaderValue>,
    ) -> Option<Request<Body>> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, self.authorization.clone());
        if json.is_some() {
            builder = builder.header(CONTENT_TYPE, self.json.clone());
        }
        if let Some(key) = key {
            builder = builder.header("idempotency-key", key.clone());
        }
        builder
            .body(Full::new(json.clone().unwrap_or_default()))
            .ok()
    }
}
