//! The webhook dispatcher: outbox → deliveries → HTTP.
//!
//! One loop fans new outbox events out into deliveries, claims due deliveries under a lease
//! (per subscription and order only the lowest-seq open one, so an order's events go out
//! strictly in order and a failing event holds back only its own order), and sends each claimed
//! delivery in its own task, at most `max_in_flight` at once. Every attempt is logged; the
//! outcome moves the delivery to delivered, to a later retry, or to failed. A worker that dies
//! mid-delivery leaves its lease to expire, after which any worker claims the delivery again
//! (same `webhook-id`, so receivers can de-duplicate).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use waybill_core::{Timestamp, time};
use waybill_store::{
    AttemptLog, ClaimedDelivery, DeliveryNext, DeliveryResult, Store, WebhookFlavor, WebhookHealth,
};

use super::payload;
use super::sign;
use super::ssrf::{GuardedResolver, UrlPolicy};

/// Where the dispatcher reads the time. Tests may inject their own.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        time::now()
    }
}

/// The default retry schedule: the delay before each attempt (Svix's: 8 attempts over ~28 h).
pub const DEFAULT_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";

/// Parses a comma-separated list of durations such as `0s,50ms,5m,2h,1d`.
pub fn parse_durations(text: &str) -> Result<Vec<Duration>, String> {
    let list = text
        .split(',')
        .map(|s| parse_duration(s.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err("the retry schedule needs at least one entry".into());
    }
    Ok(list)
}

/// Parses one duration: a number followed by `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (like 500ms, 5s, 5m, 2h, 1d)"))?;
    let ms = match unit {
        "ms" => 1,
        "s" | "" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit (use ms, s, m, h or d)"
            ));
        }
    };
    Ok(Duration::from_millis(n.saturating_mul(ms)))
}

/// How the dispatcher behaves.
#[derive(Clone)]
pub struct DispatcherConfig {
    /// The delay before each attempt; its length is the number of attempts. The first entry
    /// applies to nothing (the first attempt goes out as soon as the event is fanned out).
    pub schedule: Vec<Duration>,
    /// Each retry delay is stretched by a random fraction up to this (0.1 = up to +10 %).
    pub jitter: f64,
    /// A delivery that has no complete answer within this counts as failed.
    pub timeout: Duration,
    /// How long a claimed delivery is reserved for its worker.
    pub lease: Duration,
    pub max_in_flight: usize,
    /// How often to look for new events when nothing wakes the loop.
    pub poll_interval: Duration,
    /// A subscription failing continuously for this long is disabled.
    pub disable_after: Duration,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    /// Outbox events fanned out per round.
    pub batch: u32,
    /// The fan-out cursor's name.
    pub cursor: String,
    pub policy: Arc<UrlPolicy>,
    pub clock: Arc<dyn Clock>,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            schedule: parse_durations(DEFAULT_SCHEDULE).unwrap_or_default(),
            jitter: 0.1,
            timeout: Duration::from_secs(15),
            lease: Duration::from_secs(60),
            max_in_flight: 32,
            poll_interval: Duration::from_millis(250),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            max_retry_after: Duration::from_secs(24 * 3600),
            batch: 500,
            cursor: "deliveries".into(),
            policy: Arc::new(UrlPolicy::default()),
            clock: Arc::new(SystemClock),
        }
    }
}

struct Shared {
    store: Arc<dyn Store>,
    config: DispatcherConfig,
    client: reqwest::Client,
    wake: Notify,
    store_secrets: Mutex<HashMap<String, String>>,
}

/// The dispatcher. [`Dispatcher::run`] drives it until shutdown.
pub struct Dispatcher {
    shared: Arc<Shared>,
}

/// Longest response excerpt kept per attempt.
pub const EXCERPT_BYTES: usize = 1024;

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, config: DispatcherConfig) -> anyhow::Result<Dispatcher> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: config.policy.clone(),
            }))
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("Waybill-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(config.max_in_flight.max(1))
            .build()?;
        Ok(Dispatcher {
            shared: Arc::new(Shared {
                store,
                config,
                client,
                wake: Notify::new(),
                store_secrets: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Runs until `shutdown` resolves, then waits (at most the timeout) for deliveries in
    /// flight. Dropping the returned future (aborting its task) stops every delivery at once;
    /// their leases then expire and another worker takes them over.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let shared = self.shared;
        let config = &shared.config;
        let mut tasks: JoinSet<()> = JoinSet::new();
        // Fan-out runs again at once while it finds events, else once per poll interval (a
        // completed delivery wakes the loop to claim the order's next event, which needs no
        // fan-out).
        let mut fan_out_due = Instant::now();
        tokio::pin!(shutdown);
        tracing::info!(
            max_in_flight = config.max_in_flight,
            attempts = config.schedule.len(),
            "webhook dispatcher started"
        );
        loop {
            while let Some(done) = tasks.try_join_next() {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "a webhook delivery task panicked");
                }
            }
            let now = config.clock.now();
            let mut busy = false;
            if Instant::now() >= fan_out_due {
                match shared
                    .store
                    .fan_out_webhook_events(&config.cursor, config.batch, now)
                    .await
                {
                    Ok(n) if n > 0 => busy = true,
                    Ok(_) => fan_out_due = Instant::now() + config.poll_interval,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook fan-out failed");
                        fan_out_due = Instant::now() + config.poll_interval;
                    }
                }
            }
            let free = config.max_in_flight.saturating_sub(tasks.len());
            if free > 0 {
                match shared
                    .store
                    .claim_webhook_deliveries(
                        now,
                        u32::try_from(free).unwrap_or(u32::MAX),
                        config.lease,
                    )
                    .await
                {
                    Ok(claimed) => {
                        busy |= !claimed.is_empty();
                        for d in claimed {
                            let shared = shared.clone();
                            tasks.spawn(async move { deliver(&shared, d).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
                }
            }
            if busy && tasks.len() < config.max_in_flight {
                continue;
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        let grace = config.timeout + Duration::from_secs(1);
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(
                "webhook deliveries still in flight at shutdown; their leases will expire"
            );
        }
        tracing::info!("webhook dispatcher stopped");
    }
}

/// What one HTTP attempt came to.
struct Outcome {
    status: Option<u16>,
    error: Option<String>,
    excerpt: Option<String>,
    retry_after: Option<Duration>,
    latency_ms: u64,
}

async fn deliver(shared: &Shared, d: ClaimedDelivery) {
    let config = &shared.config;
    let started_at = config.clock.now();
    let (payload, outcome) = match d.payload.clone() {
        Some(p) => {
            let outcome = send(shared, &d, &p).await;
            (Some(p), outcome)
        }
        None => match payload::render(shared.store.as_ref(), &d).await {
            Ok(p) => {
                let outcome = send(shared, &d, &p).await;
                (Some(p), outcome)
            }
            Err(e) => {
                tracing::warn!(error = %e, event_id = %d.event.event_id, "could not render a webhook body");
                (
                    None,
                    Outcome {
                        status: None,
                        error: Some("the event could not be rendered; will retry".into()),
                        excerpt: None,
                        retry_after: None,
                        latency_ms: 0,
                    },
                )
            }
        },
    };
    let now = config.clock.now();
    let success = match (d.webhook.flavor, outcome.status) {
        (WebhookFlavor::Fourthwall, Some(code)) => code == 200,
        (WebhookFlavor::Redo | WebhookFlavor::Automation, Some(code)) => (200..300).contains(&code),
        (_, None) => false,
    };
    let (next, health) = if success {
        (DeliveryNext::Delivered, WebhookHealth::Healthy)
    } else if outcome.status == Some(410) {
        (
            DeliveryNext::Failed,
            WebhookHealth::Disable("the receiver answered 410 Gone".into()),
        )
    } else {
        let attempt = usize::try_from(d.attempt).unwrap_or(usize::MAX);
        let next = match config.schedule.get(attempt) {
            Some(delay) => {
                let mut delay = jittered(*delay, config.jitter);
                if let Some(after) = outcome.retry_after {
                    delay = delay.max(after.min(config.max_retry_after));
                }
                DeliveryNext::RetryAt(add(now, delay))
            }
            None => DeliveryNext::Failed,
        };
        let failing_too_long = d.webhook.failing_since.is_some_and(|since| {
            (now - since)
                .to_std()
                .is_ok_and(|elapsed| elapsed >= config.disable_after)
        });
        let health = if failing_too_long {
            WebhookHealth::Disable(format!(
                "every delivery failed for {} hours",
                config.disable_after.as_secs() / 3600
            ))
        } else {
            WebhookHealth::Failing
        };
        (next, health)
    };
    tracing::debug!(
        event_id = %d.event.event_id,
        webhook_id = %d.webhook.id,
        attempt = d.attempt,
        status = ?outcome.status,
        ?next,
        "webhook attempt"
    );
    let result = DeliveryResult {
        delivery_id: d.delivery_id,
        claim: d.claim,
        webhook_id: d.webhook.id.clone(),
        attempt: AttemptLog {
            at: started_at,
            status_code: outcome.status,
            latency_ms: outcome.latency_ms,
            error: outcome.error,
            response_excerpt: outcome.excerpt,
        },
        next,
        health,
        payload,
    };
    if let Err(e) = shared.store.finish_webhook_delivery(result, now).await {
        tracing::warn!(error = %e, delivery_id = d.delivery_id, "could not record a webhook attempt; the lease will expire and it will be retried");
    }
    shared.wake.notify_one();
}

fn jittered(delay: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 || delay.is_zero() {
        return delay;
    }
    let factor = 1.0 + rand::rng().random_range(0.0..jitter);
    delay.mul_f64(factor)
}

fn add(ts: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| ts.checked_add_signed(d))
        .unwrap_or(ts)
}

fn failure(error: String, started: Instant) -> Outcome {
    Outcome {
        status: None,
        error: Some(error),
        excerpt: None,
        retry_after: None,
        latency_ms: elapsed_ms(started),
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn store_secret(shared: &Shared, store_id: &str) -> Result<String, String> {
    if let Ok(cache) = shared.store_secrets.lock()
        && let Some(secret) = cache.get(store_id)
    {
        return Ok(secret.clone());
    }
    let secret = shared
        .store
        .store_webhook_secret(store_id, &sign::generate_store_secret())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "could not read a store's webhook secret");
            "the store's webhook secret could not be read".to_owned()
        })?;
    if let Ok(mut cache) = shared.store_secrets.lock() {
        cache.insert(store_id.to_owned(), secret.clone());
    }
    Ok(secret)
}

async fn send(shared: &Shared, d: &ClaimedDelivery, body: &str) -> Outcome {
    let config = &shared.config;
    let started = Instant::now();
    let url = match UrlPolicy::parse_url(&d.webhook.url) {
        Ok(url) => url,
        Err(refusal) => return failure(refusal.message().to_owned(), started),
    };
    if let Some(ip) = UrlPolicy::literal_ip(&url)
        && !config.policy.permits(ip)
    {
        return failure(
            format!("{ip} is not an address webhooks may reach"),
            started,
        );
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let timestamp = config.clock.now().timestamp();
    let header = |v: &str| HeaderValue::from_str(v).ok();
    match d.webhook.flavor {
        WebhookFlavor::Redo | WebhookFlavor::Automation => {
            let signature = sign::standard_signature(
                &d.webhook.secret,
                &d.event.event_id,
                timestamp,
                body.as_bytes(),
            );
            for (name, value) in [
                ("webhook-id", header(&d.event.event_id)),
                ("webhook-timestamp", header(&timestamp.to_string())),
                ("webhook-signature", header(&signature)),
            ] {
                if let Some(value) = value {
                    headers.insert(name, value);
                }
            }
            if let Some(token) = &d.webhook.bearer_token
                && let Some(value) = header(&format!("Bearer {token}"))
            {
                headers.insert(AUTHORIZATION, value);
            }
        }
        WebhookFlavor::Fourthwall => {
            let secret = match store_secret(shared, &d.event.store_id).await {
                Ok(s) => s,
                Err(e) => return failure(e, started),
            };
            if let Some(value) = header(&sign::fourthwall_signature(&secret, body.as_bytes())) {
                headers.insert("x-fourthwall-hmac-sha256", value);
            }
            if let Some(value) = header(&d.event.event_id) {
                headers.insert("webhook-id", value);
            }
        }
    }
    let request = shared
        .client
        .post(url)
        .headers(headers)
        .timeout(config.timeout)
        .body(body.to_owned());
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => return failure(describe(&e), started),
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, config.clock.now()));
    let mut excerpt: Vec<u8> = Vec::new();
    let mut error = None;
    while excerpt.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = EXCERPT_BYTES - excerpt.len();
                excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(format!("reading the response: {}", describe(&e)));
                break;
            }
        }
    }
    let excerpt = (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned());
    Outcome {
        // A response whose body could not be read within the timeout does not count as an
        // answer: the status is kept for the log, but a 2xx is not taken as success.
        status: Some(status),
        error,
        excerpt,
        retry_after,
        latency_ms: elapsed_ms(started),
    }
    .settle()
}

impl Outcome {
    /// A 2xx whose body failed to arrive is a failure (the answer never completed).
    fn settle(mut self) -> Outcome {
        if self.error.is_some() && self.status.is_some_and(|s| (200..300).contains(&s)) {
            self.status = None;
        }
        self
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "the request failed"
    } else {
        "the exchange failed"
    };
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    let mut text = format!("{kind}: {detail}");
    text.truncate(500);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedules() {
        let s = parse_durations(DEFAULT_SCHEDULE).unwrap();
        assert_eq!(s.len(), 8);
        assert_eq!(s[2], Duration::from_secs(300));
        assert_eq!(s[7], Duration::from_secs(36_000));
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = time::parse_datetime("t", "2024-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Mon, 01 Jan 2024 00:00:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn jitter_only_stretches() {
        let d = Duration::from_millis(1000);
        for _ in 0..100 {
            let j = jittered(d, 0.1);
            assert!(j >= d && j <= Duration::from_millis(1100));
        }
        assert_eq!(jittered(Duration::ZERO, 0.5), Duration::ZERO);
    }
}
