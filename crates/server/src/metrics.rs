//! Prometheus metrics: the process-wide registry, the request-counting middleware and the
//! `GET /metrics` handler.
//!
//! One registry serves the whole process, so the webhook dispatcher and automations record
//! into it without being handed anything (see [`automation_run`]). It is encoded as
//! OpenMetrics text, which Prometheus scrapes natively.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use waybill_store::read_routing::{ReadRoute, ReplicaReadStats};

use crate::AppState;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the request latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    dialect: &'static str,
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    dialect: &'static str,
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlavorLabels {
    flavor: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AutomationLabels {
    action: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaReadLabels {
    server: &'static str,
    reason: &'static str,
}

/// The label set of a family listed without series.
type Unlabelled = Vec<(&'static str, &'static str)>;

/// A metric family listed (`# HELP`, `# TYPE`) even before its first series exists; the
/// registry would leave an empty family out, and a dashboard could not tell "none yet" from
/// "not exported by this version".
#[derive(Debug)]
struct Listed<M>(M);

impl<M: EncodeMetric + TypedMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }
}

type LatencyFamily = Family<LatencyLabels, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    unfanned_events: Gauge,
    open_deliveries: Gauge,
    webhook_attempts: Family<FlavorLabels, Counter>,
    webhook_failures: Family<FlavorLabels, Counter>,
    automation_runs: Family<AutomationLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let requests = Family::<RequestLabels, Counter>::default();
    registry.register(
        "http_requests",
        "HTTP requests answered, by dialect, method, matched route template and status",
        Listed(requests.clone()),
    );
    let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
    registry.register(
        "http_request_duration_seconds",
        "Time from a request's arrival to its response headers, by dialect, method and route",
        Listed(latency.clone()),
    );
    let unfanned_events = Gauge::default();
    registry.register(
        "webhook_outbox_unfanned_events",
        "Outbox events not yet fanned out into webhook deliveries (read at scrape time)",
        unfanned_events.clone(),
    );
    let open_deliveries = Gauge::default();
    registry.register(
        "webhook_open_deliveries",
        "Webhook deliveries pending (perhaps awaiting a retry) or in flight (read at scrape time)",
        open_deliveries.clone(),
    );
    let webhook_attempts = Family::<FlavorLabels, Counter>::default();
    registry.register(
        "webhook_attempts",
        "Webhook delivery attempts made by this process's dispatcher, by subscription flavor",
        Listed(webhook_attempts.clone()),
    );
    let webhook_failures = Family::<FlavorLabels, Counter>::default();
    registry.register(
        "webhook_failures",
        "Webhook delivery attempts that failed (no answer, timeout, or a status the flavor does not accept)",
        Listed(webhook_failures.clone()),
    );
    // Both flavors start at zero, so a rate over them exists before the first delivery.
    for flavor in ["redo", "fourthwall", "automation"] {
        drop(webhook_attempts.get_or_create(&FlavorLabels { flavor }));
        drop(webhook_failures.get_or_create(&FlavorLabels { flavor }));
    }
    let automation_runs = Family::<AutomationLabels, Counter>::default();
    registry.register(
        "automation_runs",
        "Automation runs, by action and result",
        Listed(automation_runs.clone()),
    );
    // Every (action, result) starts at zero.
    for action in ["email", "webhook"] {
        for result in ["succeeded", "retry", "failed"] {
            drop(automation_runs.get_or_create(&AutomationLabels {
                action: action.to_owned(),
                result: result.to_owned(),
            }));
        }
    }
    Metrics {
        registry,
        requests,
        latency,
        unfanned_events,
        open_deliveries,
        webhook_attempts,
        webhook_failures,
        automation_runs,
    }
});

/// Counts one automation run (`automation_runs_total{action, result}`).
pub fn automation_run(action: &str, result: &str) {
    METRICS
        .automation_runs
        .get_or_create(&AutomationLabels {
            action: action.to_owned(),
            result: result.to_owned(),
        })
        .inc();
}

/// Counts one webhook delivery attempt of a subscription of `flavor` (`"redo"`,
/// `"fourthwall"`), and whether it failed.
pub fn webhook_attempt(flavor: &'static str, failed: bool) {
    let labels = FlavorLabels { flavor };
    METRICS.webhook_attempts.get_or_create(&labels).inc();
    if failed {
        METRICS.webhook_failures.get_or_create(&labels).inc();
    }
}

/// Which dialect a route template belongs to, from its mount point.
fn dialect(route: &str) -> &'static str {
    let under = |prefix: &str| {
        route
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/v2.2") {
        "redo"
    } else if under("/adm") {
        "adm"
    } else if under("/open-api/v1.0") {
        "fourthwall"
    } else if under("/v1") {
        "orderprotection"
    } else {
        "none"
    }
}

/// Middleware: counts and times every request by its matched route template (never the raw
/// path, so ids do not multiply the series); requests no route matched count as `unmatched`.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let dialect = dialect(&route);
    METRICS
        .latency
        .get_or_create(&LatencyLabels {
            dialect,
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    METRICS
        .requests
        .get_or_create(&RequestLabels {
            dialect,
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`, or nothing when metrics are turned off.
pub fn routes(enabled: bool) -> axum::Router<AppState> {
    let router = axum::Router::new();
    if enabled {
        router.route("/metrics", axum::routing::get(serve))
    } else {
        router
    }
}

/// `GET /metrics`: refreshes the backlog gauges from the store, then encodes the registry.
#[utoipa::path(get, path = "/metrics", tag = "Operations",
    responses((status = 200, description = "Prometheus metrics in the OpenMetrics text format (see docs/OPERATIONS.md); not served with --no-metrics", body = String, content_type = "application/openmetrics-text")))]
pub async fn serve(State(state): State<AppState>) -> Response {
    match state.store.webhook_backlog(BACKLOG_CURSOR).await {
        Ok(backlog) => {
            METRICS
                .unfanned_events
                .set(i64::try_from(backlog.unfanned_events).unwrap_or(i64::MAX));
            METRICS
                .open_deliveries
                .set(i64::try_from(backlog.open_deliveries).unwrap_or(i64::MAX));
        }
        // The other metrics are still worth serving; the gauges keep their last reading.
        Err(e) => tracing::warn!(error = %e, "could not read the webhook backlog for /metrics"),
    }
    // The read replica's figures belong to this state's store, not to the process-wide
    // registry: they are read now and encoded after it, from a registry of this scrape's own.
    let replica = replica_registry(state.store.read_replica_stats().as_ref());
    let mut body = String::new();
    let encoded = prometheus_client::encoding::text::encode_registry(&mut body, &METRICS.registry)
        .and_then(|()| prometheus_client::encoding::text::encode_registry(&mut body, &replica))
        .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut body));
    if let Err(e) = encoded {
        tracing::error!(error = %e, "could not encode the metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

/// The read replica's families (docs/OPERATIONS.md, "Metrics"), always listed; their series
/// only with a replica: `read_replica_reads_total{server, reason}` for every route,
/// `read_replica_up`, and `read_replica_lag_seconds` while the lag is known.
fn replica_registry(stats: Option<&ReplicaReadStats>) -> Registry {
    const READS: &str = "Reads made for GET and HEAD requests that could use the read replica, \
        by the server that answered (replica, primary) and why (caught_up; unavailable, \
        lagging, own_write, replica_error)";
    const UP: &str = "1 when the read replica answered the last probe as a standby, else 0";
    const LAG: &str = "How far the read replica trails: seconds since the latest instant \
        before which it holds every acknowledged commit, as of the last probe (absent while \
        unknown)";
    let mut registry = Registry::default();
    let reads = Family::<ReplicaReadLabels, Counter>::default();
    // A gauge without a series, for a family that is listed but has no value.
    let unset = || Listed(Family::<Unlabelled, Gauge>::default());
    match stats {
        Some(stats) => {
            for route in ReadRoute::ALL {
                reads
                    .get_or_create(&ReplicaReadLabels {
                        server: route.server(),
                        reason: route.reason(),
                    })
                    .inc_by(stats.count(route));
            }
            registry.register("read_replica_reads", READS, Listed(reads));
            let up = Gauge::<i64>::default();
            up.set(i64::from(stats.up));
            registry.register("read_replica_up", UP, up);
            match stats.lag {
                Some(trailing) => {
                    let lag = Gauge::<f64, AtomicU64>::default();
                    lag.set(trailing.as_secs_f64());
                    registry.register("read_replica_lag_seconds", LAG, lag);
                }
                None => registry.register("read_replica_lag_seconds", LAG, unset()),
            }
        }
        None => {
            registry.register("read_replica_reads", READS, Listed(reads));
            registry.register("read_replica_up", UP, unset());
            registry.register("read_replica_lag_seconds", LAG, unset());
        }
    }
    registry
}

/// The fan-out cursor whose backlog is reported: the dispatcher's default one.
const BACKLOG_CURSOR: &str = "deliveries";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_follow_mount_points() {
        assert_eq!(dialect("/v2.2/stores/{store_id}/orders"), "redo");
        assert_eq!(dialect("/adm/fulfillments"), "adm");
        assert_eq!(dialect("/open-api/v1.0/order/{id}"), "fourthwall");
        assert_eq!(dialect("/v1/orders"), "orderprotection");
        assert_eq!(dialect("/v10/x"), "none");
        assert_eq!(dialect("/healthz"), "none");
    }

    #[test]
    fn replica_families_are_listed_and_carry_the_store_figures() {
        let encode = |registry: &Registry| {
            let mut body = String::new();
            prometheus_client::encoding::text::encode_registry(&mut body, registry).unwrap();
            body
        };
        let none = encode(&replica_registry(None));
        for family in [
            "read_replica_reads",
            "read_replica_up",
            "read_replica_lag_seconds",
        ] {
            assert!(none.contains(&format!("# TYPE {family} ")), "{none}");
        }
        assert!(
            !none.lines().any(|l| l.starts_with("read_replica")),
            "no series without a replica: {none}"
        );

        let stats = ReplicaReadStats {
            reads: [7, 1, 2, 3, 4],
            up: true,
            lag: Some(std::time::Duration::from_millis(250)),
        };
        let body = encode(&replica_registry(Some(&stats)));
        for line in [
            r#"read_replica_reads_total{server="replica",reason="caught_up"} 7"#,
            r#"read_replica_reads_total{server="primary",reason="unavailable"} 1"#,
            r#"read_replica_reads_total{server="primary",reason="lagging"} 2"#,
            r#"read_replica_reads_total{server="primary",reason="own_write"} 3"#,
            r#"read_replica_reads_total{server="primary",reason="replica_error"} 4"#,
            "read_replica_up 1",
            "read_replica_lag_seconds 0.25",
        ] {
            assert!(
                body.lines().any(|l| l == line),
                "{line} missing from {body}"
            );
        }
        let down = ReplicaReadStats {
            up: false,
            lag: None,
            ..stats
        };
        let body = encode(&replica_registry(Some(&down)));
        assert!(body.lines().any(|l| l == "read_replica_up 0"), "{body}");
        assert!(
            !body
                .lines()
                .any(|l| l.starts_with("read_replica_lag_seconds")),
            "{body}"
        );
    }

    #[test]
    fn automation_runs_are_encoded_with_their_labels() {
        automation_run("unit-test-action", "ok");
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, &METRICS.registry).unwrap();
        assert!(
            body.contains(r#"automation_runs_total{action="unit-test-action",result="ok"} 1"#),
            "{body}"
        );
    }
}
