//! The command line: `serve` (the default), `migrate`, `check`,
//! `print-schema`, `promote` and `seed`.

use std::io::IsTerminal;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

use crate::{
    App,
    config::{Config, LogFormat, SETTINGS},
    db,
};

#[derive(Parser)]
#[command(name = "tweetmeet", version, about = "The Tweet Meet GraphQL server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations and serve HTTP and WebSocket (the default).
    Serve,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Check the configuration, the database (reachable, migrations) and the
    /// mail server, as a deploy does before switching traffic; exits non-zero
    /// when a check fails.
    Check,
    /// Write the schema's SDL (what schema.graphql holds) to stdout.
    PrintSchema,
    /// Make a user an administrator: the only way to create the first one.
    Promote {
        /// The user's handle.
        handle: String,
    },
    /// Fill the database with realistic demo data.
    Seed {
        /// How many meets.
        #[arg(long, default_value_t = 500)]
        meets: usize,
        /// How many users.
        #[arg(long, default_value_t = 300)]
        users: usize,
        /// Random seed, for the same data every time.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Subcommand, Clone, Copy)]
enum MigrateAction {
    /// Apply every pending migration (the default).
    Up,
    /// Roll back the last migration (or the last `--steps`). On a database
    /// holding users or meets it asks on a terminal, and refuses elsewhere
    /// unless given `--yes`.
    Down {
        /// How many migrations to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
        /// Roll back even though the database holds data.
        #[arg(long)]
        yes: bool,
    },
    /// List migrations and whether each is applied.
    Status,
}

/// Logs to stdout, filtered by `RUST_LOG`; and with an OTLP endpoint, traces
/// to it through a layer with its own filter (so `RUST_LOG` says what the
/// log shows, not what is traced). Returns the tracer provider to flush on
/// exit.
fn init_logging(config: &Config) -> anyhow::Result<Option<SdkTracerProvider>> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let log = match config.log_format {
        LogFormat::Json => fmt::layer().json().with_current_span(true).boxed(),
        // Colour only for a person at a terminal, not in a file or a collector.
        LogFormat::Text => fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .boxed(),
    };
    let provider = config
        .otlp_endpoint
        .as_deref()
        .map(crate::telemetry::provider)
        .transpose()?;
    let traces = provider.as_ref().map(crate::telemetry::layer);
    tracing_subscriber::registry()
        .with(log.with_filter(filter))
        .with(traces)
        .init();
    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!("traces go to {}", crate::telemetry::traces_url(endpoint));
    }
    Ok(provider)
}

/// The command line with every setting as a flag that falls back to its
/// variable (and a `.env` file), listed with its default in `--help`.
fn command() -> clap::Command {
    let settings = SETTINGS.iter().map(|setting| {
        clap::Arg::new(setting.name)
            .long(setting.flag())
            .env(setting.name)
            // Secrets and URLs with passwords must not show in `--help`.
            .hide_env_values(true)
            .value_name("VALUE")
            .global(true)
            .help_heading("Settings (each also its variable)")
            .help(format!("{} [default: {}]", setting.help, setting.default))
    });
    Cli::command().args(settings)
}

/// Runs the command line; what `main` calls.
pub async fn run() -> anyhow::Result<()> {
    // Before parsing, so that `.env` fills what the flags fall back to.
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(err) if err.not_found() => {}
        Err(err) => return Err(err).context("reading .env"),
    }
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    if let Some(Command::PrintSchema) = cli.command {
        print!("{}", crate::graphql::sdl());
        return Ok(());
    }
    let config = Config::from_lookup(|name| matches.get_one::<String>(name).cloned())?;
    let tracer = init_logging(&config)?;
    let outcome = execute(cli.command.unwrap_or(Command::Serve), config).await;
    if let Some(tracer) = tracer {
        crate::telemetry::shutdown(tracer).await;
    }
    outcome
}

async fn execute(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate { action } => migrate(&config, action.unwrap_or(MigrateAction::Up)).await,
        Command::Check => crate::operate::check(&config).await,
        Command::PrintSchema => Ok(()),
        Command::Promote { handle } => {
            let db = db::connect(&config.database_url).await?;
            db::migrate(&db).await?;
            let user = crate::admin::service::promote(&db, &handle)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{} is now an administrator", user.handle);
            Ok(())
        }
        Command::Seed { meets, users, seed } => {
            let db = db::connect(&config.database_url).await?;
            db::migrate(&db).await?;
            crate::seed::run(
                &db,
                crate::seed::SeedOptions {
                    users: users.max(1),
                    meets,
                    seed,
                },
            )
            .await
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // The port first: a busy one is found before anything is migrated or
    // written.
    let bind = config.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let metrics_listener = match config.metrics_bind {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} for metrics"))?,
        ),
        None => None,
    };
    let app = App::new(config).await?;
    if let Some(metrics_listener) = metrics_listener {
        tracing::info!(
            "metrics at http://{}/metrics",
            metrics_listener.local_addr()?
        );
        crate::metrics::spawn_upkeep();
        let router = crate::metrics::router(app.database().clone());
        tokio::spawn(async move {
            if let Err(err) = axum::serve(metrics_listener, router).await {
                tracing::error!(error = %err, "serving metrics");
            }
        });
    }
    let address = listener.local_addr()?;
    tracing::info!(
        "serving GraphQL at http://{address}/graphql; playground at http://{address}/playground"
    );
    app.serve(listener, crate::shutdown_signal()).await
}

async fn migrate(config: &Config, action: MigrateAction) -> anyhow::Result<()> {
    let db = db::connect(&config.database_url).await?;
    match action {
        MigrateAction::Up => crate::operate::migrate_up(&db).await,
        MigrateAction::Down { steps, yes } => crate::operate::migrate_down(&db, steps, yes).await,
        MigrateAction::Status => crate::operate::migration_status(&db).await,
    }
}
