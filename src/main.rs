use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use memberhub::config::Settings;
use memberhub::startup::{self, Application};
use memberhub::{db, telemetry};

/// memberhub: members, points, tiers and member days for a clinic chain.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML settings file; `MEMBERHUB_*` environment variables override it.
    #[arg(long, env = "MEMBERHUB_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("memberhub: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = telemetry::init(&settings.log) {
        eprintln!("memberhub: {e}");
        return ExitCode::from(2);
    }
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    startup::serve(app).await?;
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let conn = db::connect(&settings.database).await?;
    tracing::info!("database: {}", db::describe(&conn, &settings.database));
    let applied = db::migrate(&conn).await?;
    tracing::info!("migrations: {applied} applied, schema up to date");
    Ok(())
}
