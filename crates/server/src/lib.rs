//! Waybill's HTTP server: one axum router that speaks several vendors' APIs over one core.
//!
//! The library builds and runs the server; the `waybill` binary only parses its command line.
//! Tests bind port 0 and talk real HTTP to [`app`].

pub mod auth;
pub mod automations;
pub mod carriers;
pub mod dialects;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod import;
pub mod inbound;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod parse;
pub mod problem;
pub mod request_id;
pub mod retention;
pub mod strict;
pub mod ui;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use waybill_store::Store;

/// Largest request body accepted; larger ones are answered 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler can reach: cloned for every request (by each extractor and middleware
/// that takes it), so it is one shared pointer rather than a struct of several.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    /// Which callback addresses webhook registration accepts (strict by default).
    pub url_policy: Arc<webhooks::UrlPolicy>,
    /// Whether `GET /metrics` is served.
    pub metrics: bool,
    /// Rate, concurrency, time and header limits.
    pub limits: Arc<limits::Limits>,
    /// How long an `Idempotency-Key` and its answer live.
    pub idempotency_ttl: Duration,
    /// How long a running request's reservation of its key holds between renewals
    /// (`idempotency::LEASE`).
    pub idempotency_lease: Duration,
    /// How the dashboard decides on `Secure` cookies and a sign-in's client address.
    pub dashboard: ui::DashboardSettings,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>) -> Self {
        AppState(Arc::new(Shared {
            store,
            url_policy: Arc::new(webhooks::UrlPolicy::default()),
            metrics: true,
            limits: Arc::new(limits::Limits::default()),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            idempotency_lease: idempotency::LEASE,
            dashboard: ui::DashboardSettings::default(),
        }))
    }

    /// The contents to change while building (copied first if already shared, which the
    /// builders below are not: they run before the state is handed to the router).
    fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, settings: limits::LimitSettings) -> Self {
        self.shared_mut().limits = Arc::new(limits::Limits::new(settings));
        self
    }

    /// Sets how long idempotency keys live.
    pub fn with_idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.shared_mut().idempotency_ttl = ttl;
        self
    }

    /// Sets the lease of an idempotency key's reservation (renewed every third of it while its
    /// request runs): how soon a key held by a request that died can be taken over. Tests
    /// shorten it; [`idempotency::LEASE`] otherwise.
    pub fn with_idempotency_lease(mut self, lease: Duration) -> Self {
        self.shared_mut().idempotency_lease = lease;
        self
    }

    /// Replaces the webhook URL policy (for example to allow loopback receivers).
    pub fn with_url_policy(mut self, policy: webhooks::UrlPolicy) -> Self {
        self.shared_mut().url_policy = Arc::new(policy);
        self
    }

    /// Sets the dashboard's cookie and proxy settings.
    pub fn with_dashboard(mut self, settings: ui::DashboardSettings) -> Self {
        self.shared_mut().dashboard = settings;
        self
    }

    /// Serves `GET /metrics` or not (on by default).
    pub fn with_metrics(mut self, enabled: bool) -> Self {
        self.shared_mut().metrics = enabled;
        self
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .route("/openapi.json", axum::routing::get(openapi::serve))
        .merge(metrics::routes(state.metrics))
        .nest("/v2.2", dialects::redo::routes())
        .nest("/adm", dialects::adm::routes())
        .nest(
            "/open-api/v1.0",
            dialects::fourthwall::routes().merge(dialects::fourthwall_webhooks::routes()),
        )
        .nest("/v1", dialects::orderprotection::routes())
        .nest("/inbound", inbound::routes())
        .nest("/ui", ui::routes())
        .route(
            "/ui/",
            axum::routing::get(|| async { axum::response::Redirect::to("/ui/orders") }),
        )
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(axum::middleware::from_fn(replica_reads))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::handle,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::enforce,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http().make_span_with(request_id::span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// `GET` and `HEAD` requests (lists, gets, exports, dashboard pages) may read from a
/// PostgreSQL read replica; every other request, and background work, reads from the primary
/// (`waybill_store::read_routing`, docs/OPERATIONS.md "Read replicas").
async fn replica_reads(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method();
    if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        waybill_store::read_routing::allow_replica(next.run(request)).await
    } else {
        next.run(request).await
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving HTTP")
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Upper bound for finishing in-flight work after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
