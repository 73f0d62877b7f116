//! Settings in layers: built-in defaults, then a TOML file, then `WAYBILL_*` environment
//! variables, then command-line flags; a later layer wins.
//!
//! Every setting has one name, used as the TOML key; its environment variable and flag are
//! listed in [`KEYS`]. Values are kept as text with the layer they came from until they are
//! parsed, so an error names the setting, the value and where it was set.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use waybill_server::webhooks::dispatcher::{DEFAULT_SCHEDULE, parse_duration, parse_durations};
use waybill_server::webhooks::{DispatcherConfig, UrlPolicy};

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "WAYBILL_CONFIG";
/// The file read when neither `--config` nor `WAYBILL_CONFIG` names one, if it exists.
pub const DEFAULT_FILE: &str = "waybill.toml";

/// One setting.
pub struct Key {
    /// The TOML key, and the name used in messages.
    pub name: &'static str,
    pub env: &'static str,
    /// The flag, if the setting has one.
    pub flag: Option<&'static str>,
    pub default: &'static str,
    /// Whether the value may hold a credential (shown redacted).
    pub secret: bool,
}

const fn key(
    name: &'static str,
    env: &'static str,
    flag: Option<&'static str>,
    default: &'static str,
) -> Key {
    Key {
        name,
        env,
        flag,
        default,
        secret: false,
    }
}

pub const DEFAULT_LOG_FILTER: &str = "info,tower_http=warn,tokio_postgres=warn";

/// Every setting, in the order they are shown.
pub const KEYS: &[Key] = &[
    Key {
        secret: true,
        ..key(
            "database_url",
            "WAYBILL_DATABASE_URL",
            Some("--database"),
            "sqlite://waybill.db",
        )
    },
    key(
        "sqlite_synchronous",
        "WAYBILL_SQLITE_SYNCHRONOUS",
        Some("--sqlite-synchronous"),
        "full",
    ),
    key(
        "pg_pool_size",
        "WAYBILL_PG_POOL_SIZE",
        Some("--pg-pool-size"),
        "16",
    ),
    key(
        "pg_acquire_timeout_ms",
        "WAYBILL_PG_ACQUIRE_TIMEOUT_MS",
        Some("--pg-acquire-timeout-ms"),
        "5000",
    ),
    key(
        "pg_statement_timeout_ms",
        "WAYBILL_PG_STATEMENT_TIMEOUT_MS",
        Some("--pg-statement-timeout-ms"),
        "10000",
    ),
    key(
        "pg_group_commit",
        "WAYBILL_PG_GROUP_COMMIT",
        Some("--pg-group-commit"),
        "4",
    ),
    Key {
        secret: true,
        ..key(
            "pg_read_url",
            "WAYBILL_PG_READ_URL",
            Some("--pg-read-url"),
            "",
        )
    },
    key(
        "pg_read_max_lag_ms",
        "WAYBILL_PG_READ_MAX_LAG_MS",
        Some("--pg-read-max-lag-ms"),
        "1000",
    ),
    key(
        "pg_read_check_interval_ms",
        "WAYBILL_PG_READ_CHECK_INTERVAL_MS",
        None,
        "20",
    ),
    key(
        "log_format",
        "WAYBILL_LOG_FORMAT",
        Some("--log-format"),
        "pretty",
    ),
    key("log", "WAYBILL_LOG", None, DEFAULT_LOG_FILTER),
    key(
        "listen",
        "WAYBILL_LISTEN",
        Some("--listen"),
        "127.0.0.1:8080",
    ),
    key(
        "dispatcher",
        "WAYBILL_DISPATCHER",
        Some("--no-dispatcher"),
        "true",
    ),
    key("metrics", "WAYBILL_METRICS", Some("--no-metrics"), "true"),
    key(
        "shutdown_grace",
        "WAYBILL_SHUTDOWN_GRACE",
        Some("--shutdown-grace"),
        "20",
    ),
    key(
        "webhook_allow_private",
        "WAYBILL_WEBHOOK_ALLOW_PRIVATE",
        Some("--webhook-allow-private"),
        "false",
    ),
    key(
        "webhook_allow_cidrs",
        "WAYBILL_WEBHOOK_ALLOW_CIDRS",
        Some("--webhook-allow-cidrs"),
        "",
    ),
    key(
        "webhook_timeout",
        "WAYBILL_WEBHOOK_TIMEOUT",
        Some("--webhook-timeout"),
        "15s",
    ),
    key(
        "webhook_retry_schedule",
        "WAYBILL_WEBHOOK_RETRY_SCHEDULE",
        Some("--webhook-retry-schedule"),
        DEFAULT_SCHEDULE,
    ),
    key(
        "webhook_retry_jitter",
        "WAYBILL_WEBHOOK_RETRY_JITTER",
        Some("--webhook-retry-jitter"),
        "0.1",
    ),
    key(
        "webhook_max_in_flight",
        "WAYBILL_WEBHOOK_MAX_IN_FLIGHT",
        Some("--webhook-max-in-flight"),
        "32",
    ),
    key(
        "webhook_lease",
        "WAYBILL_WEBHOOK_LEASE",
        Some("--webhook-lease"),
        "60s",
    ),
    Key {
        secret: true,
        ..key("smtp_url", "WAYBILL_SMTP_URL", Some("--smtp-url"), "")
    },
    key(
        "smtp_from",
        "WAYBILL_SMTP_FROM",
        Some("--smtp-from"),
        "Waybill <waybill@localhost>",
    ),
    key("idempotency_ttl", "WAYBILL_IDEMPOTENCY_TTL", None, "24h"),
    key("auth_cache_ttl", "WAYBILL_AUTH_CACHE_TTL", None, "2s"),
    key("rate_limit", "WAYBILL_RATE_LIMIT", None, "1000"),
    key("rate_limit_burst", "WAYBILL_RATE_LIMIT_BURST", None, "2000"),
    key(
        "rate_limit_shared",
        "WAYBILL_RATE_LIMIT_SHARED",
        None,
        "false",
    ),
    key(
        "retention_interval",
        "WAYBILL_RETENTION_INTERVAL",
        None,
        "5m",
    ),
    key(
        "retention_outbox_age",
        "WAYBILL_RETENTION_OUTBOX_AGE",
        None,
        "7d",
    ),
    key(
        "retention_delivery_age",
        "WAYBILL_RETENTION_DELIVERY_AGE",
        None,
        "30d",
    ),
    key("retention_batch", "WAYBILL_RETENTION_BATCH", None, "1000"),
    key("retention_pause", "WAYBILL_RETENTION_PAUSE", None, "100ms"),
    key(
        "max_in_flight_per_store",
        "WAYBILL_MAX_IN_FLIGHT_PER_STORE",
        None,
        "256",
    ),
    key("request_timeout", "WAYBILL_REQUEST_TIMEOUT", None, "30s"),
    key(
        "max_header_bytes",
        "WAYBILL_MAX_HEADER_BYTES",
        None,
        "16384",
    ),
    key(
        "scheduler_interval",
        "WAYBILL_SCHEDULER_INTERVAL",
        Some("--scheduler-interval"),
        "60s",
    ),
    key("automation_lease", "WAYBILL_AUTOMATION_LEASE", None, "120s"),
    key("public_url", "WAYBILL_PUBLIC_URL", None, ""),
    key("trust_proxy", "WAYBILL_TRUST_PROXY", None, "false"),
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("the default"),
            Source::File(path) => write!(f, "the config file {}", path.display()),
            Source::Env(var) => write!(f, "the environment variable {var}"),
            Source::Flag(flag) => write!(f, "the flag {flag}"),
        }
    }
}

impl Source {
    fn short(&self) -> String {
        match self {
            Source::Default => "default".into(),
            Source::File(path) => format!("file {}", path.display()),
            Source::Env(var) => format!("env {var}"),
            Source::Flag(flag) => format!("flag {flag}"),
        }
    }
}

/// The layered text values, before parsing.
struct Layers {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl Layers {
    fn raw(&self, name: &str) -> (&str, &Source) {
        self.values
            .get(name)
            .map(|(v, s)| (v.as_str(), s))
            .unwrap_or(("", &Source::Default))
    }

    /// Parses one setting, naming it, its value and its layer on failure.
    fn parse<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        let (value, source) = self.raw(name);
        parse(value).map_err(|reason| {
            let shown = if KEYS.iter().any(|k| k.name == name && k.secret) {
                waybill_store::redact_url(value)
            } else {
                value.to_owned()
            };
            anyhow::anyhow!("invalid {name} '{shown}' (from {source}): {reason}")
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The effective configuration.
pub struct Config {
    pub file: Option<PathBuf>,
    pub database_url: String,
    pub store: waybill_store::OpenOptions,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub listen: SocketAddr,
    pub dispatcher: bool,
    pub metrics: bool,
    pub shutdown_grace: Duration,
    pub url_policy: UrlPolicy,
    pub webhooks: DispatcherConfig,
    pub automations: waybill_server::automations::AutomationConfig,
    pub limits: waybill_server::limits::LimitSettings,
    pub retention: waybill_server::retention::RetentionSettings,
    pub idempotency_ttl: Duration,
    pub dashboard: waybill_server::ui::DashboardSettings,
    layers: Layers,
}

/// Which configuration file to read: `--config`, else `WAYBILL_CONFIG`, else `./waybill.toml`
/// if it exists. A file named explicitly must exist.
fn config_file(flag: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    let named = match flag {
        Some(path) => Some((path.to_path_buf(), "--config")),
        None => std::env::var_os(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(|v| (PathBuf::from(v), CONFIG_ENV)),
    };
    match named {
        Some((path, from)) => {
            if !path.is_file() {
                bail!(
                    "the config file {} (named by {from}) does not exist",
                    path.display()
                );
            }
            Ok(Some(path))
        }
        None => Ok(Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file())),
    }
}

/// A TOML value as the text a flag or variable would carry; lists are joined with commas.
fn toml_text(name: &str, value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::Array(_) | toml::Value::Table(_) => {
                    Err(format!("{name} cannot hold nested lists or tables"))
                }
                other => toml_text(name, other),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        toml::Value::Datetime(_) | toml::Value::Table(_) => Err(format!(
            "{name} must be a string, number, boolean or list, not a {}",
            value.type_str()
        )),
    }
}

/// ` at line L, column C` of where a TOML error starts, or nothing if it has no place.
fn toml_position(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(start) = span.map(|s| s.start.min(text.len())) else {
        return String::new();
    };
    let before = text.get(..start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(" at line {line}, column {column}")
}

fn read_file(path: &Path) -> anyhow::Result<Vec<(&'static Key, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        anyhow::anyhow!(
            "the config file {} is not valid TOML{}: {}",
            path.display(),
            toml_position(&text, e.span()),
            e.message()
        )
    })?;
    let mut values = Vec::new();
    for (name, value) in &table {
        let Some(key) = KEYS.iter().find(|k| k.name == name) else {
            let hint = KEYS
                .iter()
                .find(|k| k.env.eq_ignore_ascii_case(name) || similar(k.name, name))
                .map(|k| format!(" (did you mean {}?)", k.name))
                .unwrap_or_default();
            bail!(
                "unknown key '{name}' in the config file {}{hint}; known keys: {}",
                path.display(),
                KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
            );
        };
        let text = toml_text(name, value)
            .map_err(|e| anyhow::anyhow!("in the config file {}: {e}", path.display()))?;
        values.push((key, text));
    }
    Ok(values)
}

/// Whether two names differ by at most one edit (a typo).
fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    a.len().max(b.len()) - prefix - suffix <= 1
}

/// The URL browsers use to reach the server (blank: unknown); whether its scheme is https.
fn parse_public_url(v: &str) -> Result<bool, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(false);
    }
    let lower = v.to_ascii_lowercase();
    let (https, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err("expected an http:// or https:// URL".into());
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("expected a URL with a host".into());
    }
    Ok(https)
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_positive<T: std::str::FromStr + PartialOrd + From<u8>>(v: &str) -> Result<T, String> {
    match v.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err("expected a whole number of at least 1".into()),
    }
}

fn parse_seconds(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    if v.chars().all(|c| c.is_ascii_digit()) && !v.is_empty() {
        return v
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| e.to_string());
    }
    parse_duration(v)
}

impl Config {
    /// Layers defaults, the file, the environment and `flags` (setting name and value, for the
    /// flags given), then parses and checks every setting.
    pub fn load(
        config_flag: Option<&Path>,
        flags: &[(&'static str, String)],
    ) -> anyhow::Result<Config> {
        let mut values: BTreeMap<&'static str, (String, Source)> = KEYS
            .iter()
            .map(|k| (k.name, (k.default.to_owned(), Source::Default)))
            .collect();
        let file = config_file(config_flag)?;
        if let Some(path) = &file {
            for (key, text) in read_file(path)? {
                values.insert(key.name, (text, Source::File(path.clone())));
            }
        }
        for key in KEYS {
            match std::env::var(key.env) {
                Ok(v) if !v.is_empty() => {
                    values.insert(key.name, (v, Source::Env(key.env)));
                }
                Ok(_) | Err(std::env::VarError::NotPresent) => {}
                Err(std::env::VarError::NotUnicode(_)) => {
                    bail!("the environment variable {} is not valid UTF-8", key.env)
                }
            }
        }
        for (name, value) in flags {
            let key = KEYS
                .iter()
                .find(|k| k.name == *name)
                .with_context(|| format!("no setting is named {name}"))?;
            let flag = key.flag.unwrap_or(key.name);
            values.insert(key.name, (value.clone(), Source::Flag(flag)));
        }
        Self::parse(file, Layers { values })
    }

    fn parse(file: Option<PathBuf>, layers: Layers) -> anyhow::Result<Config> {
        let synchronous = layers.parse("sqlite_synchronous", |v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "full" => Ok(waybill_store::sqlite::Synchronous::Full),
                "normal" => Ok(waybill_store::sqlite::Synchronous::Normal),
                _ => Err("expected full or normal".into()),
            }
        })?;
        let auth_cache_ttl = layers.parse("auth_cache_ttl", parse_seconds)?;
        let store = waybill_store::OpenOptions {
            postgres: waybill_store::postgres::PgOptions {
                pool_size: layers.parse("pg_pool_size", parse_positive::<usize>)?,
                acquire_timeout: Duration::from_millis(
                    layers.parse("pg_acquire_timeout_ms", parse_positive::<u64>)?,
                ),
                statement_timeout: Duration::from_millis(
                    layers.parse("pg_statement_timeout_ms", parse_positive::<u64>)?,
                ),
                auth_cache_ttl,
                group_commit_workers: layers.parse("pg_group_commit", |v| {
                    v.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= 64)
                        .ok_or_else(|| "expected a whole number from 0 to 64".to_owned())
                })?,
                read_url: layers.parse("pg_read_url", |v| {
                    let v = v.trim();
                    if v.is_empty() {
                        Ok(None)
                    } else if waybill_store::postgres::is_postgres_url(v) {
                        Ok(Some(v.to_owned()))
                    } else {
                        Err(
                            "expected postgres://USER@HOST:PORT/DATABASE (a streaming replica), \
                             or nothing"
                                .into(),
                        )
                    }
                })?,
                read_max_lag: Duration::from_millis(
                    layers.parse("pg_read_max_lag_ms", parse_positive::<u64>)?,
                ),
                read_check_interval: Duration::from_millis(
                    layers.parse("pg_read_check_interval_ms", parse_positive::<u64>)?,
                ),
                ..Default::default()
            },
            sqlite: waybill_store::sqlite::SqliteOptions {
                synchronous,
                auth_cache_ttl,
                ..Default::default()
            },
        };
        let database_url = layers.parse("database_url", |v| {
            let v = v.trim();
            if waybill_store::sqlite::path_from_url(v).is_some()
                || waybill_store::postgres::is_postgres_url(v)
            {
                Ok(v.to_owned())
            } else {
                Err("expected sqlite://PATH or postgres://USER@HOST:PORT/DATABASE".into())
            }
        })?;
        if store.postgres.read_url.is_some()
            && !waybill_store::postgres::is_postgres_url(&database_url)
        {
            let (value, source) = layers.raw("pg_read_url");
            bail!(
                "invalid pg_read_url '{}' (from {source}): a read replica needs a PostgreSQL \
                 database_url",
                waybill_store::redact_url(value)
            );
        }
        let log_format = layers.parse("log_format", |v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "pretty" => Ok(LogFormat::Pretty),
                "json" => Ok(LogFormat::Json),
                _ => Err("expected pretty or json".into()),
            }
        })?;
        let log_filter = layers.parse("log", |v| {
            tracing_subscriber::EnvFilter::try_new(v)
                .map(|_| v.to_owned())
                .map_err(|e| format!("not a log filter: {e}"))
        })?;
        let listen = layers.parse("listen", |v| {
            v.trim()
                .parse::<SocketAddr>()
                .map_err(|_| "expected an address and port such as 127.0.0.1:8080".into())
        })?;
        let url_policy = layers.parse("webhook_allow_private", parse_bool)?;
        let url_policy = layers.parse("webhook_allow_cidrs", |v| {
            UrlPolicy::new(url_policy, v).map_err(|e| e.to_string())
        })?;
        let timeout = layers.parse("webhook_timeout", parse_duration)?;
        let lease = layers.parse("webhook_lease", parse_duration)?;
        let schedule = layers.parse("webhook_retry_schedule", parse_durations)?;
        let jitter = layers.parse("webhook_retry_jitter", |v| match v.trim().parse::<f64>() {
            Ok(j) if (0.0..=1.0).contains(&j) => Ok(j),
            _ => Err("expected a number between 0 and 1".into()),
        })?;
        let max_in_flight = layers.parse("webhook_max_in_flight", parse_positive::<usize>)?;
        let shutdown_grace = layers.parse("shutdown_grace", parse_seconds)?;
        if timeout.is_zero() {
            let (value, source) = layers.raw("webhook_timeout");
            bail!("invalid webhook_timeout '{value}' (from {source}): must not be zero");
        }
        if lease <= timeout {
            let (lease_value, lease_source) = layers.raw("webhook_lease");
            let (timeout_value, timeout_source) = layers.raw("webhook_timeout");
            bail!(
                "the webhook lease must be longer than the webhook timeout: webhook_lease \
                 '{lease_value}' (from {lease_source}), webhook_timeout '{timeout_value}' \
                 (from {timeout_source})"
            );
        }
        let webhooks = DispatcherConfig {
            schedule,
            jitter,
            timeout,
            lease,
            max_in_flight,
            policy: Arc::new(url_policy.clone()),
            shutdown_grace,
            ..DispatcherConfig::default()
        };
        let smtp_from = layers.parse("smtp_from", |v| {
            waybill_server::automations::mailer::check_mailbox(v.trim())
                .map(|()| v.trim().to_owned())
        })?;
        let mailer = layers.parse("smtp_url", |v| {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            waybill_server::automations::Mailer::new(&waybill_server::automations::SmtpConfig {
                url: v.to_owned(),
                from: smtp_from.clone(),
            })
            .map(|m| Some(Arc::new(m)))
            .map_err(|e| e.to_string())
        })?;
        let scheduler_interval =
            layers.parse("scheduler_interval", |v| match parse_duration(v) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err("must not be zero".into()),
                Err(e) => Err(e),
            })?;
        let whole = |v: &str| -> Result<u64, String> {
            v.trim()
                .parse::<u64>()
                .map_err(|_| "expected a whole number (0 turns the limit off)".into())
        };
        let positive_duration = |v: &str| match parse_duration(v) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err("must not be zero".to_owned()),
            Err(e) => Err(e),
        };
        let limits = waybill_server::limits::LimitSettings {
            rate_per_second: layers.parse("rate_limit", |v| {
                whole(v).and_then(|n| u32::try_from(n).map_err(|_| "too large".into()))
            })?,
            burst: layers.parse("rate_limit_burst", |v| {
                whole(v).and_then(|n| u32::try_from(n).map_err(|_| "too large".into()))
            })?,
            max_in_flight_per_store: layers.parse("max_in_flight_per_store", |v| {
                whole(v).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            })?,
            request_timeout: layers.parse("request_timeout", positive_duration)?,
            max_header_bytes: layers.parse("max_header_bytes", |v| match whole(v) {
                Ok(n) if n >= 1024 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                Ok(_) => Err("must be at least 1024".into()),
                Err(e) => Err(e),
            })?,
            shared_rate: layers.parse("rate_limit_shared", parse_bool)?,
        };
        // An age of 0 keeps those rows for good.
        let age = |v: &str| parse_duration(v).map(|d| (!d.is_zero()).then_some(d));
        let retention = waybill_server::retention::RetentionSettings {
            interval: layers.parse("retention_interval", positive_duration)?,
            outbox_age: layers.parse("retention_outbox_age", age)?,
            delivery_age: layers.parse("retention_delivery_age", age)?,
            batch: layers.parse("retention_batch", |v| match whole(v) {
                Ok(n) if (1..=100_000).contains(&n) => Ok(u32::try_from(n).unwrap_or(1000)),
                Ok(_) => Err("must be between 1 and 100000".into()),
                Err(e) => Err(e),
            })?,
            pause: layers.parse("retention_pause", parse_duration)?,
        };
        let idempotency_ttl = layers.parse("idempotency_ttl", positive_duration)?;
        let dashboard = waybill_server::ui::DashboardSettings {
            public_https: layers.parse("public_url", parse_public_url)?,
            trust_proxy: layers.parse("trust_proxy", parse_bool)?,
        };
        let automation_lease = layers.parse("automation_lease", positive_duration)?;
        let automations = waybill_server::automations::AutomationConfig {
            mailer,
            scheduler_interval,
            lease: automation_lease,
            ..Default::default()
        };
        Ok(Config {
            file,
            database_url,
            store,
            log_format,
            log_filter,
            listen,
            dispatcher: layers.parse("dispatcher", parse_bool)?,
            metrics: layers.parse("metrics", parse_bool)?,
            shutdown_grace,
            url_policy,
            webhooks,
            automations,
            limits,
            retention,
            idempotency_ttl,
            dashboard,
            layers,
        })
    }

    /// Every setting with its value (credentials redacted) and layer, as JSON.
    pub fn describe(&self) -> Value {
        let mut settings = serde_json::Map::new();
        for key in KEYS {
            let (value, source) = self.layers.raw(key.name);
            let shown = if key.secret {
                waybill_store::redact_url(value)
            } else {
                value.to_owned()
            };
            settings.insert(
                key.name.to_owned(),
                json!({ "value": shown, "source": source.short() }),
            );
        }
        json!({
            "file": self.file.as_ref().map(|p| p.display().to_string()),
            "settings": settings,
        })
    }

    /// One line for the start-up log: `key=value` for every setting, credentials redacted.
    pub fn summary(&self) -> String {
        KEYS.iter()
            .map(|key| {
                let (value, source) = self.layers.raw(key.name);
                let shown = if key.secret {
                    waybill_store::redact_url(value)
                } else {
                    value.to_owned()
                };
                match source {
                    Source::Default => format!("{}={shown}", key.name),
                    other => format!("{}={shown} ({})", key.name, other.short()),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_recognised() {
        assert!(similar("pg_pool_size", "pg_pool_sise"));
        assert!(similar("metrics", "metric"));
        assert!(!similar("listen", "database_url"));
    }

    #[test]
    fn toml_lists_become_comma_separated() {
        let v: toml::Value = toml::Value::Array(vec!["1s".into(), "5m".into()]);
        assert_eq!(toml_text("x", &v).unwrap(), "1s,5m");
        assert_eq!(toml_text("x", &toml::Value::Integer(3)).unwrap(), "3");
    }

    #[test]
    fn public_urls_say_whether_browsers_use_https() {
        assert_eq!(parse_public_url(""), Ok(false));
        assert_eq!(parse_public_url("https://ops.example.com/"), Ok(true));
        assert_eq!(parse_public_url("HTTPS://ops.example.com"), Ok(true));
        assert_eq!(parse_public_url("http://10.0.0.1:8080"), Ok(false));
        assert!(parse_public_url("ops.example.com").is_err());
        assert!(parse_public_url("https:///path").is_err());
    }

    #[test]
    fn a_toml_error_is_one_line_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\npg_pool_size = \n").unwrap();
        let message = read_file(&path).err().unwrap().to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.contains("is not valid TOML at line 2, column 16: "),
            "{message}"
        );
        assert_eq!(toml_position("a", None), "");
    }

    #[test]
    fn every_key_has_a_parseable_default() {
        let layers = Layers {
            values: KEYS
                .iter()
                .map(|k| (k.name, (k.default.to_owned(), Source::Default)))
                .collect(),
        };
        let config = Config::parse(None, layers).unwrap();
        assert_eq!(config.shutdown_grace, Duration::from_secs(20));
        assert!(config.metrics && config.dispatcher);
        assert_eq!(config.store.postgres.pool_size, 16);
    }
}
