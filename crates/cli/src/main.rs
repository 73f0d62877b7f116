//! `waybill`: run the server and manage stores and keys.

mod bench;
mod bench_webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use tracing_subscriber::EnvFilter;
use waybill_server::AppState;
use waybill_server::automations::{self, AutomationConfig, Mailer, SmtpConfig};
use waybill_server::webhooks::dispatcher::{DEFAULT_SCHEDULE, parse_duration, parse_durations};
use waybill_server::webhooks::{Dispatcher, DispatcherConfig, UrlPolicy};
use waybill_store::Store;

#[derive(Parser)]
#[command(
    name = "waybill",
    version,
    about = "Self-hosted fulfillment and shipment tracking"
)]
struct Cli {
    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB (created or migrated on
    /// first use).
    #[arg(
        long,
        global = true,
        env = "WAYBILL_DATABASE_URL",
        default_value = "sqlite://waybill.db"
    )]
    database: String,

    /// PostgreSQL only: most connections this process holds open.
    #[arg(
        long,
        global = true,
        env = "WAYBILL_PG_POOL_SIZE",
        default_value_t = 16
    )]
    pg_pool_size: usize,

    /// PostgreSQL only: how long a request waits for a connection before it is answered 503
    /// (milliseconds).
    #[arg(
        long,
        global = true,
        env = "WAYBILL_PG_ACQUIRE_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pg_acquire_timeout_ms: u64,

    /// PostgreSQL only: the server-side limit on one statement (milliseconds).
    #[arg(
        long,
        global = true,
        env = "WAYBILL_PG_STATEMENT_TIMEOUT_MS",
        default_value_t = 10000
    )]
    pg_statement_timeout_ms: u64,

    /// SQLite only: full (default; a commit survives power loss) or normal (faster; the last
    /// commits may be lost on power loss, never on a crash of the process).
    #[arg(long, global = true, env = "WAYBILL_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSync::Full)]
    sqlite_synchronous: SqliteSync,

    /// Log format on stderr.
    #[arg(long, global = true, env = "WAYBILL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum SqliteSync {
    Full,
    Normal,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "WAYBILL_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Do not run the webhook dispatcher in this process (run `waybill worker` instead).
        #[arg(long)]
        no_dispatcher: bool,
        /// Run the webhook dispatcher in this process (`WAYBILL_DISPATCHER=false` turns it off).
        #[arg(
            long,
            env = "WAYBILL_DISPATCHER",
            default_value_t = true,
            action = clap::ArgAction::Set,
            hide = true
        )]
        dispatcher: bool,
        #[command(flatten)]
        webhooks: WebhookArgs,
        #[command(flatten)]
        automations: AutomationArgs,
    },
    /// Run only the background work: webhook dispatcher, automation worker and time-event
    /// scheduler (as many workers as wanted may share one database).
    Worker {
        #[command(flatten)]
        webhooks: WebhookArgs,
        #[command(flatten)]
        automations: AutomationArgs,
    },
    /// Apply database migrations and exit.
    Migrate,
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
    /// Measure throughput and latency on a temporary SQLite database or a PostgreSQL schema
    /// (see docs/PERFORMANCE.md).
    Bench(bench::BenchArgs),
    /// Measure webhook deliveries per second to a local receiver (see docs/PERFORMANCE.md).
    BenchWebhooks(bench_webhooks::BenchWebhooksArgs),
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

/// Webhook settings, shared by `serve` and `worker`.
#[derive(clap::Args, Clone)]
struct WebhookArgs {
    /// Let webhooks reach loopback, private, link-local and other special addresses.
    #[arg(long, env = "WAYBILL_WEBHOOK_ALLOW_PRIVATE")]
    webhook_allow_private: bool,
    /// Comma-separated address ranges webhooks may reach although special (127.0.0.0/8,...).
    #[arg(long, env = "WAYBILL_WEBHOOK_ALLOW_CIDRS", default_value = "")]
    webhook_allow_cidrs: String,
    /// A delivery not answered in full within this fails (e.g. 15s, 500ms).
    #[arg(long, env = "WAYBILL_WEBHOOK_TIMEOUT", default_value = "15s")]
    webhook_timeout: String,
    /// Delay before each attempt; the count is the number of attempts.
    #[arg(long, env = "WAYBILL_WEBHOOK_RETRY_SCHEDULE", default_value = DEFAULT_SCHEDULE)]
    webhook_retry_schedule: String,
    /// Each retry delay is stretched by a random fraction up to this (0 to 1).
    #[arg(long, env = "WAYBILL_WEBHOOK_RETRY_JITTER", default_value_t = 0.1)]
    webhook_retry_jitter: f64,
    /// Deliveries in flight at once, across orders.
    #[arg(long, env = "WAYBILL_WEBHOOK_MAX_IN_FLIGHT", default_value_t = 32)]
    webhook_max_in_flight: usize,
    /// How long a claimed delivery is reserved for its worker; must exceed the timeout.
    #[arg(long, env = "WAYBILL_WEBHOOK_LEASE", default_value = "60s")]
    webhook_lease: String,
}

impl WebhookArgs {
    fn policy(&self) -> anyhow::Result<UrlPolicy> {
        UrlPolicy::new(self.webhook_allow_private, &self.webhook_allow_cidrs)
            .map_err(|e| anyhow::anyhow!("WAYBILL_WEBHOOK_ALLOW_CIDRS: {e}"))
    }

    fn dispatcher_config(&self) -> anyhow::Result<DispatcherConfig> {
        let timeout = parse_duration(&self.webhook_timeout)
            .map_err(|e| anyhow::anyhow!("WAYBILL_WEBHOOK_TIMEOUT: {e}"))?;
        let lease = parse_duration(&self.webhook_lease)
            .map_err(|e| anyhow::anyhow!("WAYBILL_WEBHOOK_LEASE: {e}"))?;
        let schedule = parse_durations(&self.webhook_retry_schedule)
            .map_err(|e| anyhow::anyhow!("WAYBILL_WEBHOOK_RETRY_SCHEDULE: {e}"))?;
        if timeout.is_zero() || lease <= timeout {
            bail!("the webhook lease must be longer than the (non-zero) webhook timeout");
        }
        if !(0.0..=1.0).contains(&self.webhook_retry_jitter) {
            bail!("WAYBILL_WEBHOOK_RETRY_JITTER must be between 0 and 1");
        }
        if self.webhook_max_in_flight == 0 {
            bail!("WAYBILL_WEBHOOK_MAX_IN_FLIGHT must be positive");
        }
        Ok(DispatcherConfig {
            schedule,
            jitter: self.webhook_retry_jitter,
            timeout,
            lease,
            max_in_flight: self.webhook_max_in_flight,
            policy: Arc::new(self.policy()?),
            ..DispatcherConfig::default()
        })
    }
}

/// Automation settings, shared by `serve` and `worker`.
#[derive(clap::Args, Clone)]
struct AutomationArgs {
    /// SMTP server for email automations: smtp://[user:pass@]host[:port][?tls=required]
    /// (STARTTLS) or smtps://… (TLS); unset: email automations fail with a clear error.
    #[arg(long, env = "WAYBILL_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of automation emails, e.g. "Shop <orders@shop.example>".
    #[arg(
        long,
        env = "WAYBILL_SMTP_FROM",
        default_value = "Waybill <waybill@localhost>"
    )]
    smtp_from: String,
    /// How often to look for stalled and delayed shipments.
    #[arg(long, env = "WAYBILL_SCHEDULER_INTERVAL", default_value = "60s")]
    scheduler_interval: String,
}

impl AutomationArgs {
    fn config(&self) -> anyhow::Result<AutomationConfig> {
        let scheduler_interval = parse_duration(&self.scheduler_interval)
            .map_err(|e| anyhow::anyhow!("WAYBILL_SCHEDULER_INTERVAL: {e}"))?;
        if scheduler_interval.is_zero() {
            bail!("WAYBILL_SCHEDULER_INTERVAL must be positive");
        }
        let mailer = match &self.smtp_url {
            Some(url) if !url.trim().is_empty() => Some(Arc::new(Mailer::new(&SmtpConfig {
                url: url.trim().to_owned(),
                from: self.smtp_from.clone(),
            })?)),
            _ => None,
        };
        Ok(AutomationConfig {
            mailer,
            scheduler_interval,
            ..AutomationConfig::default()
        })
    }
}

/// Runs the background work (dispatcher, automation worker, scheduler) until `stopped` turns
/// true.
fn spawn_background(
    store: &Arc<dyn Store>,
    dispatcher: Dispatcher,
    automations: AutomationConfig,
    stopped: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let until_stopped = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    vec![
        tokio::spawn(dispatcher.run(until_stopped())),
        tokio::spawn(automations::run_worker(
            store.clone(),
            automations.clone(),
            until_stopped(),
        )),
        tokio::spawn(automations::run_scheduler(
            store.clone(),
            automations,
            until_stopped(),
        )),
    ]
}

#[derive(Subcommand)]
enum StoresCommand {
    /// Create a store and print its id and API secret (shown once) as one line of JSON.
    Create {
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
        #[arg(long)]
        store: String,
    },
    /// List a store's keys (never their secrets), one JSON object per line.
    List {
        #[arg(long)]
        store: String,
    },
    /// Revoke a key; it stops working on the next request.
    Revoke { key_id: String },
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("WAYBILL_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,tokio_postgres=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let database = cli.database;
    let options = waybill_store::OpenOptions {
        postgres: waybill_store::postgres::PgOptions {
            pool_size: cli.pg_pool_size.max(1),
            acquire_timeout: Duration::from_millis(cli.pg_acquire_timeout_ms.max(1)),
            statement_timeout: Duration::from_millis(cli.pg_statement_timeout_ms.max(1)),
            ..Default::default()
        },
        sqlite: waybill_store::sqlite::SqliteOptions {
            synchronous: match cli.sqlite_synchronous {
                SqliteSync::Full => waybill_store::sqlite::Synchronous::Full,
                SqliteSync::Normal => waybill_store::sqlite::Synchronous::Normal,
            },
            ..Default::default()
        },
    };
    let open = || async {
        waybill_store::open_with(&database, &options)
            .await
            .with_context(|| format!("opening {}", waybill_store::redact_url(&database)))
    };
    match cli.command {
        Command::Serve {
            listen,
            no_dispatcher,
            dispatcher,
            webhooks,
            automations,
        } => {
            serve(
                open().await?,
                listen,
                dispatcher && !no_dispatcher,
                webhooks,
                automations,
            )
            .await
        }
        Command::Worker {
            webhooks,
            automations,
        } => worker(open().await?, webhooks, automations).await,
        Command::Migrate => {
            let store = open().await?;
            tracing::info!(database = %store.describe(), "database is migrated");
            Ok(())
        }
        Command::Stores { command } => stores(open().await?, command).await,
        Command::Keys { command } => keys(open().await?, command).await,
        Command::Bench(args) => bench::run(args).await,
        Command::BenchWebhooks(args) => bench_webhooks::run(args).await,
        Command::Backup { path, force } => backup(&database, &path, force),
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

async fn serve(
    store: Arc<dyn Store>,
    listen: SocketAddr,
    with_dispatcher: bool,
    webhooks: WebhookArgs,
    automations: AutomationArgs,
) -> anyhow::Result<()> {
    let policy = webhooks.policy()?;
    let background = if with_dispatcher {
        Some((
            Dispatcher::new(store.clone(), webhooks.dispatcher_config()?)?,
            automations.config()?,
        ))
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(
        "listening on http://{addr} with database {}",
        store.describe()
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = background
        .map(|(dispatcher, automations)| {
            spawn_background(&store, dispatcher, automations, &stopped)
        })
        .unwrap_or_default();
    let result = waybill_server::serve(
        listener,
        AppState::new(store).with_url_policy(policy),
        async move {
            waybill_server::shutdown_signal().await;
            let _ = stop.send(true);
        },
    )
    .await;
    for task in tasks {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "a background task failed");
        }
    }
    result
}

async fn worker(
    store: Arc<dyn Store>,
    webhooks: WebhookArgs,
    automations: AutomationArgs,
) -> anyhow::Result<()> {
    let dispatcher = Dispatcher::new(store.clone(), webhooks.dispatcher_config()?)?;
    let automations = automations.config()?;
    tracing::info!("worker running with database {}", store.describe());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = spawn_background(&store, dispatcher, automations, &stopped);
    waybill_server::shutdown_signal().await;
    let _ = stop.send(true);
    for task in tasks {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "a background task failed");
        }
    }
    Ok(())
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
