//! `waybill`: run the server and manage stores and keys.

mod bench;
mod bench_client;
mod bench_pg;
mod bench_retention;
mod bench_webhooks;
mod config;
mod import;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use config::Config;
use serde_json::json;
use waybill_server::AppState;
use waybill_server::automations;
use waybill_server::webhooks::Dispatcher;
use waybill_store::Store;

/// The help heading of the database settings, which every command takes.
const DATABASE: &str = "Database options";
/// The help heading of the other settings every command takes.
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "waybill",
    version,
    about = "Self-hosted fulfillment and shipment tracking",
    after_help = "Settings come from defaults, then a TOML file (--config, WAYBILL_CONFIG or ./waybill.toml), then WAYBILL_* environment variables, then flags; see docs/OPERATIONS.md. `waybill config` prints the result."
)]
struct Cli {
    /// TOML configuration file [env: WAYBILL_CONFIG] [default: ./waybill.toml if present]
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    config: Option<PathBuf>,

    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB (created or migrated on
    /// first use) [env: WAYBILL_DATABASE_URL] [default: sqlite://waybill.db]
    #[arg(long, global = true, value_name = "URL", help_heading = DATABASE)]
    database: Option<String>,

    /// PostgreSQL only: most connections this process holds open [env: WAYBILL_PG_POOL_SIZE]
    /// [default: 16]
    #[arg(long, global = true, value_name = "N", help_heading = DATABASE)]
    pg_pool_size: Option<String>,

    /// PostgreSQL only: how long a request waits for a connection before it is answered 503,
    /// in milliseconds [env: WAYBILL_PG_ACQUIRE_TIMEOUT_MS] [default: 5000]
    #[arg(long, global = true, value_name = "MS", help_heading = DATABASE)]
    pg_acquire_timeout_ms: Option<String>,

    /// PostgreSQL only: the server-side limit on one statement, in milliseconds
    /// [env: WAYBILL_PG_STATEMENT_TIMEOUT_MS] [default: 10000]
    #[arg(long, global = true, value_name = "MS", help_heading = DATABASE)]
    pg_statement_timeout_ms: Option<String>,

    /// PostgreSQL only: group commit, how many transactions at a time run queued
    /// create-fulfillment and shipment-status requests together (0: one transaction per
    /// request) [env: WAYBILL_PG_GROUP_COMMIT] [default: 4]
    #[arg(long, global = true, value_name = "N", help_heading = DATABASE)]
    pg_group_commit: Option<String>,

    /// PostgreSQL only: a streaming replica for list, get and export reads, used while it has
    /// caught up with this process's writes (see docs/OPERATIONS.md, "Read replicas")
    /// [env: WAYBILL_PG_READ_URL] [default: none]
    #[arg(long, global = true, value_name = "URL", help_heading = DATABASE)]
    pg_read_url: Option<String>,

    /// PostgreSQL only: the most the read replica may trail the primary and still serve reads,
    /// in milliseconds [env: WAYBILL_PG_READ_MAX_LAG_MS] [default: 1000]
    #[arg(long, global = true, value_name = "MS", help_heading = DATABASE)]
    pg_read_max_lag_ms: Option<String>,

    /// SQLite only: full (a commit survives power loss) or normal (faster; the last commits
    /// may be lost on power loss, never on a crash of the process)
    /// [env: WAYBILL_SQLITE_SYNCHRONOUS] [default: full]
    #[arg(long, global = true, value_name = "full|normal", help_heading = DATABASE)]
    sqlite_synchronous: Option<String>,

    /// Log format on stderr: pretty or json [env: WAYBILL_LOG_FORMAT] [default: pretty]
    #[arg(long, global = true, value_name = "pretty|json", help_heading = GLOBAL)]
    log_format: Option<String>,

    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The settings given as flags, by setting name.
    fn flags(&self) -> Vec<(&'static str, String)> {
        let mut flags: Vec<(&'static str, String)> = [
            ("database_url", &self.database),
            ("pg_pool_size", &self.pg_pool_size),
            ("pg_acquire_timeout_ms", &self.pg_acquire_timeout_ms),
            ("pg_statement_timeout_ms", &self.pg_statement_timeout_ms),
            ("pg_group_commit", &self.pg_group_commit),
            ("pg_read_url", &self.pg_read_url),
            ("pg_read_max_lag_ms", &self.pg_read_max_lag_ms),
            ("sqlite_synchronous", &self.sqlite_synchronous),
            ("log_format", &self.log_format),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
        .collect();
        match &self.command {
            Command::Serve {
                listen,
                no_dispatcher,
                dispatcher,
                no_metrics,
                shutdown,
                webhooks,
                automations,
            } => {
                if let Some(listen) = listen {
                    flags.push(("listen", listen.clone()));
                }
                if let Some(dispatcher) = dispatcher {
                    flags.push(("dispatcher", dispatcher.clone()));
                }
                if *no_dispatcher {
                    flags.push(("dispatcher", "false".into()));
                }
                if *no_metrics {
                    flags.push(("metrics", "false".into()));
                }
                shutdown.flags(&mut flags);
                webhooks.flags(&mut flags);
                automations.flags(&mut flags);
            }
            Command::Worker {
                shutdown,
                webhooks,
                automations,
            } => {
                shutdown.flags(&mut flags);
                webhooks.flags(&mut flags);
                automations.flags(&mut flags);
            }
            _ => {}
        }
        flags
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on [env: WAYBILL_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Do not run the webhook dispatcher in this process (run `waybill worker` instead)
        /// [env: WAYBILL_DISPATCHER=false]
        #[arg(long)]
        no_dispatcher: bool,
        /// Run the webhook dispatcher in this process (`WAYBILL_DISPATCHER=false` turns it off).
        #[arg(long, hide = true)]
        dispatcher: Option<String>,
        /// Do not serve GET /metrics [env: WAYBILL_METRICS=false]
        #[arg(long)]
        no_metrics: bool,
        #[command(flatten)]
        shutdown: ShutdownArgs,
        #[command(flatten)]
        webhooks: WebhookArgs,
        #[command(flatten)]
        automations: AutomationArgs,
    },
    /// Run only the background work: the webhook dispatcher, the automation worker and the
    /// time-event scheduler (as many workers as wanted may share one database).
    Worker {
        #[command(flatten)]
        shutdown: ShutdownArgs,
        #[command(flatten)]
        webhooks: WebhookArgs,
        #[command(flatten)]
        automations: AutomationArgs,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration (credentials redacted) with where each value came
    /// from, as JSON, and exit.
    Config,
    /// Manage stores.
    Stores {
        #[command(subcommand)]
        command: StoresCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Import data from files.
    Import {
        #[command(subcommand)]
        command: import::ImportCommand,
    },
    /// Measure throughput and latency on a temporary SQLite database or a PostgreSQL schema
    /// (see docs/PERFORMANCE.md).
    Bench(bench::BenchArgs),
    /// Measure webhook deliveries per second to a local receiver (see docs/PERFORMANCE.md).
    BenchWebhooks(bench_webhooks::BenchWebhooksArgs),
    /// Show the database's size under a long steady load of writes and webhook deliveries,
    /// with retention at short ages or without it (see docs/PERFORMANCE.md).
    BenchRetention(bench_retention::BenchRetentionArgs),
    /// Copy the live SQLite database to PATH while servers keep running (SQLite's online backup
    /// API). For PostgreSQL use pg_dump; see docs/OPERATIONS.md.
    Backup {
        /// Where to write the copy.
        path: std::path::PathBuf,
        /// Replace PATH if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// How long a stopping process may take.
#[derive(clap::Args, Clone)]
struct ShutdownArgs {
    /// After SIGTERM or SIGINT, seconds to let requests and webhook deliveries in flight
    /// finish before exiting anyway [env: WAYBILL_SHUTDOWN_GRACE] [default: 20]
    #[arg(long, value_name = "SECONDS")]
    shutdown_grace: Option<String>,
}

impl ShutdownArgs {
    fn flags(&self, flags: &mut Vec<(&'static str, String)>) {
        if let Some(grace) = &self.shutdown_grace {
            flags.push(("shutdown_grace", grace.clone()));
        }
    }
}

/// Webhook settings, shared by `serve` and `worker`.
#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Webhook options")]
struct WebhookArgs {
    /// Let webhooks reach loopback, private, link-local and other special addresses
    /// [env: WAYBILL_WEBHOOK_ALLOW_PRIVATE]
    #[arg(long)]
    webhook_allow_private: bool,
    /// Comma-separated address ranges webhooks may reach although special (127.0.0.0/8,...)
    /// [env: WAYBILL_WEBHOOK_ALLOW_CIDRS]
    #[arg(long, value_name = "CIDRS")]
    webhook_allow_cidrs: Option<String>,
    /// A delivery not answered in full within this fails (e.g. 15s, 500ms)
    /// [env: WAYBILL_WEBHOOK_TIMEOUT] [default: 15s]
    #[arg(long, value_name = "DURATION")]
    webhook_timeout: Option<String>,
    /// Delay before each attempt; the count is the number of attempts
    /// [env: WAYBILL_WEBHOOK_RETRY_SCHEDULE] [default: 0s,5s,5m,30m,2h,5h,10h,10h]
    #[arg(long, value_name = "DURATIONS")]
    webhook_retry_schedule: Option<String>,
    /// Each retry delay is stretched by a random fraction up to this (0 to 1)
    /// [env: WAYBILL_WEBHOOK_RETRY_JITTER] [default: 0.1]
    #[arg(long, value_name = "FRACTION")]
    webhook_retry_jitter: Option<String>,
    /// Deliveries in flight at once, across orders [env: WAYBILL_WEBHOOK_MAX_IN_FLIGHT]
    /// [default: 32]
    #[arg(long, value_name = "N")]
    webhook_max_in_flight: Option<String>,
    /// How long a claimed delivery is reserved for its worker; must exceed the timeout
    /// [env: WAYBILL_WEBHOOK_LEASE] [default: 60s]
    #[arg(long, value_name = "DURATION")]
    webhook_lease: Option<String>,
}

/// Automation settings, shared by `serve` and `worker`.
#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Automation options")]
struct AutomationArgs {
    /// SMTP server for email automations: smtp://[user:pass@]host[:port] (add ?tls=required
    /// for STARTTLS) or smtps://… (TLS); unset, email automations fail with a clear reason
    /// [env: WAYBILL_SMTP_URL]
    #[arg(long, value_name = "URL")]
    smtp_url: Option<String>,
    /// The sender of automation emails, e.g. "Shop <orders@shop.example>"
    /// [env: WAYBILL_SMTP_FROM] [default: Waybill <waybill@localhost>]
    #[arg(long, value_name = "MAILBOX")]
    smtp_from: Option<String>,
    /// How often to look for stalled and delayed shipments
    /// [env: WAYBILL_SCHEDULER_INTERVAL] [default: 60s]
    #[arg(long, value_name = "DURATION")]
    scheduler_interval: Option<String>,
}

impl AutomationArgs {
    fn flags(&self, flags: &mut Vec<(&'static str, String)>) {
        for (name, value) in [
            ("smtp_url", &self.smtp_url),
            ("smtp_from", &self.smtp_from),
            ("scheduler_interval", &self.scheduler_interval),
        ] {
            if let Some(value) = value {
                flags.push((name, value.clone()));
            }
        }
    }
}

impl WebhookArgs {
    fn flags(&self, flags: &mut Vec<(&'static str, String)>) {
        if self.webhook_allow_private {
            flags.push(("webhook_allow_private", "true".into()));
        }
        for (name, value) in [
            ("webhook_allow_cidrs", &self.webhook_allow_cidrs),
            ("webhook_timeout", &self.webhook_timeout),
            ("webhook_retry_schedule", &self.webhook_retry_schedule),
            ("webhook_retry_jitter", &self.webhook_retry_jitter),
            ("webhook_max_in_flight", &self.webhook_max_in_flight),
            ("webhook_lease", &self.webhook_lease),
        ] {
            if let Some(value) = value {
                flags.push((name, value.clone()));
            }
        }
    }
}

#[derive(Subcommand)]
enum StoresCommand {
    /// Create a store and print its id and API secret (shown once) as one line of JSON.
    Create {
        /// The store's name (shown by `stores list`).
        #[arg(long)]
        name: String,
    },
    /// List stores, one JSON object per line.
    List,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create another API key for a store and print its secret (shown once) as JSON.
    Create {
        /// The id of the store the key is for (storeId in `stores list`).
        #[arg(long)]
        store: String,
    },
    /// List a store's keys (never their secrets), one JSON object per line.
    List {
        /// The id of the store whose keys to list (storeId in `stores list`).
        #[arg(long)]
        store: String,
    },
    /// Revoke a key; it stops working on the next request.
    Revoke {
        /// The key's id (keyId in `keys create` or `keys list`), not its secret.
        key_id: String,
    },
}

/// mimalloc instead of glibc's allocator: the request path allocates many small, short-lived
/// buffers across threads, where glibc's arenas cost a tenth of the server's CPU (see
/// docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the command; a failure is one line on stderr (the error and its causes, without a
/// backtrace) and exit status 1. Usage errors are clap's: exit status 2.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line: `outer: cause: root cause`, with any line breaks in
/// a message folded into spaces.
fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main]
async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref(), &cli.flags())?;
    logging::init(&config);
    if matches!(cli.command, Command::Serve { .. } | Command::Worker { .. }) {
        tracing::info!(config = %config.summary(), "effective configuration");
    } else {
        tracing::debug!(config = %config.summary(), "effective configuration");
    }
    let open = || async {
        waybill_store::open_with(&config.database_url, &config.store)
            .await
            .with_context(|| {
                format!(
                    "opening {}",
                    waybill_store::redact_url(&config.database_url)
                )
            })
    };
    match cli.command {
        Command::Serve { .. } => serve(open().await?, &config).await,
        Command::Worker { .. } => worker(open().await?, &config).await,
        Command::Migrate => {
            let store = open().await?;
            tracing::info!(database = %store.describe(), "database is migrated");
            Ok(())
        }
        Command::Config => {
            println!("{}", config.describe());
            Ok(())
        }
        Command::Stores { command } => stores(open().await?, command).await,
        Command::Keys { command } => keys(open().await?, command).await,
        Command::Import { command } => import::run(open().await?, command).await,
        Command::Bench(args) => bench::run(args, config.store.clone()).await,
        Command::BenchWebhooks(args) => bench_webhooks::run(args).await,
        Command::BenchRetention(args) => bench_retention::run(args, config.store.clone()).await,
        Command::Backup { path, force } => backup(&config.database_url, &path, force),
    }
}

/// `waybill backup PATH`: SQLite's online backup of the database; PostgreSQL is pg_dump's job.
fn backup(database: &str, path: &std::path::Path, force: bool) -> anyhow::Result<()> {
    let Some(source) = waybill_store::sqlite::path_from_url(database) else {
        bail!(
            "waybill backup copies SQLite databases only; for PostgreSQL ({}) use pg_dump, \
             for example: pg_dump --format=custom --file=waybill.dump \"$DATABASE_URL\" \
             (restore with pg_restore; see docs/OPERATIONS.md)",
            waybill_store::redact_url(database)
        );
    };
    let started = std::time::Instant::now();
    let report = waybill_store::sqlite::backup(&source, path, force)
        .with_context(|| format!("backing up {} to {}", source.display(), path.display()))?;
    println!(
        "{}",
        json!({
            "backup": report.path.display().to_string(),
            "pages": report.pages,
            "bytes": report.bytes,
            "millis": started.elapsed().as_millis() as u64,
        })
    );
    Ok(())
}

/// When the shutdown signal arrived, once it has.
type Stopping = tokio::sync::watch::Receiver<Option<Instant>>;

/// Listens for SIGTERM or SIGINT and reports the moment to every receiver.
fn stop_on_signal() -> Stopping {
    let (tx, rx) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        waybill_server::shutdown_signal().await;
        let _ = tx.send(Some(Instant::now()));
    });
    rx
}

/// Resolves once the shutdown signal has arrived; returns its moment.
async fn stopped(mut stopping: Stopping) -> Instant {
    let at = match stopping.wait_for(Option::is_some).await {
        Ok(at) => *at,
        // The signal task is gone without a signal: never stop because of it.
        Err(_) => None,
    };
    match at {
        Some(at) => at,
        None => std::future::pending().await,
    }
}

/// [`stopped`] for futures that only need the moment to pass.
async fn stop_requested(stopping: Stopping) {
    stopped(stopping).await;
}

/// Waits for the dispatcher task until the grace after the signal ends, then abandons it
/// (its deliveries' leases expire and another worker sends them).
async fn finish_dispatcher(task: tokio::task::JoinHandle<()>, deadline: Instant) {
    let abort = task.abort_handle();
    match tokio::time::timeout_at(deadline.into(), task).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the webhook dispatcher failed"),
        Err(_) => {
            abort.abort();
            tracing::warn!(
                "the webhook dispatcher did not stop within the shutdown grace; its deliveries in flight will be sent again after their lease"
            );
        }
    }
}

async fn serve(store: Arc<dyn Store>, config: &Config) -> anyhow::Result<()> {
    let dispatcher = if config.dispatcher {
        Some(Dispatcher::new(store.clone(), config.webhooks.clone())?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(
        "listening on http://{addr} with database {}",
        store.describe()
    );
    let stopping = stop_on_signal();
    let dispatcher = dispatcher.map(|d| tokio::spawn(d.run(stop_requested(stopping.clone()))));
    let automations = if config.dispatcher {
        spawn_automations(&store, config, &stopping)
    } else {
        Vec::new()
    };
    let state = AppState::new(store)
        .with_url_policy(config.url_policy.clone())
        .with_metrics(config.metrics)
        .with_limits(config.limits.clone())
        .with_idempotency_ttl(config.idempotency_ttl)
        .with_dashboard(config.dashboard.clone());
    let grace = config.shutdown_grace;
    let server = waybill_server::serve(listener, state, {
        let stopping = stopping.clone();
        async move {
            stopped(stopping).await;
            tracing::info!(
                grace_seconds = grace.as_secs(),
                "shutting down: no new connections; finishing requests and webhook deliveries in flight"
            );
        }
    });
    let grace_over = {
        let stopping = stopping.clone();
        async move {
            let deadline = stopped(stopping).await + grace;
            tokio::time::sleep_until(deadline.into()).await;
        }
    };
    let result = tokio::select! {
        result = server => result,
        () = grace_over => {
            tracing::warn!("requests still in flight at the end of the shutdown grace; exiting anyway");
            Ok(())
        }
    };
    // If the server failed on its own, stop the background tasks too.
    let deadline = match *stopping.borrow() {
        Some(at) => at + grace,
        None => Instant::now(),
    };
    if let Some(task) = dispatcher {
        finish_dispatcher(task, deadline).await;
    }
    finish_automations(automations, deadline).await;
    if result.is_ok() {
        tracing::info!("stopped");
    }
    result
}

async fn worker(store: Arc<dyn Store>, config: &Config) -> anyhow::Result<()> {
    let dispatcher = Dispatcher::new(store.clone(), config.webhooks.clone())?;
    tracing::info!("worker running with database {}", store.describe());
    let stopping = stop_on_signal();
    let task = tokio::spawn(dispatcher.run(stop_requested(stopping.clone())));
    let automations = spawn_automations(&store, config, &stopping);
    let deadline = stopped(stopping).await + config.shutdown_grace;
    finish_dispatcher(task, deadline).await;
    finish_automations(automations, deadline).await;
    Ok(())
}

/// Starts the automation worker, the time-event scheduler and the retention task; all stop at
/// the signal.
fn spawn_automations(
    store: &Arc<dyn Store>,
    config: &Config,
    stopping: &Stopping,
) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(automations::run_worker(
            store.clone(),
            config.automations.clone(),
            stop_requested(stopping.clone()),
        )),
        tokio::spawn(automations::run_scheduler(
            store.clone(),
            config.automations.clone(),
            stop_requested(stopping.clone()),
        )),
        tokio::spawn(waybill_server::retention::run(
            store.clone(),
            config.retention.clone(),
            config.limits.clone(),
            stop_requested(stopping.clone()),
        )),
    ]
}

/// Waits for the automation tasks until `deadline`, then abandons them (a run in hand keeps
/// its lease and is claimed again later).
async fn finish_automations(tasks: Vec<tokio::task::JoinHandle<()>>, deadline: Instant) {
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(deadline.into(), task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "an automation task failed"),
            Err(_) => {
                abort.abort();
                tracing::warn!("an automation task did not stop within the shutdown grace");
            }
        }
    }
}

async fn stores(store: Arc<dyn Store>, command: StoresCommand) -> anyhow::Result<()> {
    match command {
        StoresCommand::Create { name } => {
            let (record, key) = store.create_store(&name).await?;
            println!(
                "{}",
                json!({ "storeId": record.id, "apiSecret": key.secret })
            );
        }
        StoresCommand::List => {
            for s in store.list_stores().await? {
                println!(
                    "{}",
                    json!({
                        "storeId": s.id,
                        "name": s.name,
                        "createdAt": waybill_core::time::format(s.created_at),
                    })
                );
            }
        }
    }
    Ok(())
}

async fn keys(store: Arc<dyn Store>, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { store: store_id } => {
            let key = store.create_api_key(&store_id).await?;
            println!(
                "{}",
                json!({ "keyId": key.id, "storeId": key.store_id, "apiSecret": key.secret })
            );
        }
        KeysCommand::List { store: store_id } => {
            if !store.store_exists(&store_id).await? {
                bail!("store '{store_id}' was not found");
            }
            for k in store.list_api_keys(&store_id).await? {
                println!(
                    "{}",
                    json!({
                        "keyId": k.id,
                        "storeId": k.store_id,
                        "prefix": k.prefix,
                        "createdAt": waybill_core::time::format(k.created_at),
                        "revokedAt": k.revoked_at.map(waybill_core::time::format),
                    })
                );
            }
        }
        KeysCommand::Revoke { key_id } => {
            if !store.revoke_api_key(&key_id).await? {
                bail!("no live key '{key_id}'");
            }
            println!("{}", json!({ "keyId": key_id, "revoked": true }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every subcommand and every argument but clap's own help and version, in the whole tree,
    /// with what is missing.
    fn missing_help(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(ToString::to_string);
            if help.is_none_or(|h| h.trim().is_empty()) {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            let about = sub.get_long_about().or(sub.get_about());
            if about.is_none_or(|a| a.to_string().trim().is_empty()) {
                missing.push(path.clone());
            }
            missing_help(sub, &path, missing);
        }
    }

    #[test]
    fn every_argument_and_subcommand_has_help() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        missing_help(&cmd, "waybill", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
        // The walk reaches the leaves.
        let keys = cmd.find_subcommand("keys").unwrap();
        let revoke = keys.find_subcommand("revoke").unwrap();
        assert!(revoke.get_arguments().any(|a| a.get_id() == "key_id"));
    }

    #[test]
    fn global_options_have_headings_of_their_own() {
        let cmd = Cli::command();
        for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
            let expected = match arg.get_id().as_str() {
                "config" | "log_format" => GLOBAL,
                _ => DATABASE,
            };
            assert_eq!(arg.get_help_heading(), Some(expected), "{}", arg.get_id());
        }
    }

    #[test]
    fn an_error_is_shown_on_one_line_with_its_causes() {
        let error =
            anyhow::anyhow!("storage failure: the disk\nis full\n").context("backing up a to b");
        assert_eq!(
            one_line(&error),
            "backing up a to b: storage failure: the disk is full"
        );
    }
}
