use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use memberhub::config::Settings;
use memberhub::startup::{self, Application};
use memberhub::{db, telemetry};

/// Prints a line for the operator. Unlike `println!`, a closed pipe (`memberhub jobs list |
/// head -1`) ends the output quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// memberhub: members, points, tiers and member days for a clinic chain.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML settings file; `MEMBERHUB_*` environment variables override it.
    #[arg(long, env = "MEMBERHUB_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Load the demo chain into an empty database before serving (see `memberhub demo`).
    #[arg(long)]
    demo: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage staff accounts from the shell (the first admin of a fresh installation).
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Run a nightly job now (each is idempotent: a second run for the same day changes
    /// nothing).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Load a demo chain (stores, staff, customers, members, a year of consumptions, rewards)
    /// into an empty database and print the staff sign-ins.
    Demo,
}

#[derive(Subcommand)]
enum JobsCommand {
    /// points-expiry, points-expiry-reminders or tier-retention.
    Run {
        name: String,
        /// The business date to run for (YYYY-MM-DD); default today in the business zone.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
    /// The jobs there are.
    List,
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Create an account and print its generated password once.
    Create {
        #[arg(long)]
        username: String,
        /// admin, manager, consultant or front_desk.
        #[arg(long)]
        role: String,
        /// The store id; required for every role but admin.
        #[arg(long)]
        store: Option<i64>,
        /// Shown in the console; defaults to the username.
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (generated and printed once, or read with --password-stdin) and
    /// end the account's sessions.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
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
        Command::Serve if cli.demo => serve_demo(settings).await,
        Command::Serve => serve(settings).await,
        Command::Jobs { command } => jobs(settings, command).await,
        Command::Demo => demo(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Staff { command } => staff(settings, command).await,
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

async fn serve_demo(settings: Settings) -> anyhow::Result<()> {
    demo(settings.clone()).await?;
    serve(settings).await
}

async fn cache_for(settings: &Settings) -> anyhow::Result<memberhub::cache::Cache> {
    memberhub::cache::Cache::connect(&settings.redis)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the cache: {e}"))
}

async fn demo(settings: Settings) -> anyhow::Result<()> {
    let conn = db::connect(&settings.database).await?;
    db::migrate(&conn).await?;
    let cache = cache_for(&settings).await?;
    match memberhub::demo::load(&conn, &cache, &settings).await? {
        Some(report) => say!("{report}"),
        None => say!("the database already holds customers; demo data not loaded"),
    }
    Ok(())
}

async fn jobs(settings: Settings, command: JobsCommand) -> anyhow::Result<()> {
    use memberhub::loyalty::jobs::{self, JobContext};
    match command {
        JobsCommand::List => {
            for name in jobs::JOBS {
                say!("{name}");
            }
        }
        JobsCommand::Run { name, date } => {
            let conn = db::connect(&settings.database).await?;
            db::migrate(&conn).await?;
            let cache = cache_for(&settings).await?;
            let ctx = JobContext {
                db: &conn,
                cache: &cache,
                settings: &settings,
                clock: &memberhub::clock::Clock::system(),
            };
            let report = jobs::run(&ctx, &name, date).await.map_err(cli_error)?;
            say!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let conn = db::connect(&settings.database).await?;
    tracing::info!("database: {}", db::describe(&conn, &settings.database));
    let applied = db::migrate(&conn).await?;
    tracing::info!("migrations: {applied} applied, schema up to date");
    Ok(())
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}

/// An `ApiError` on the command line: its code and message, which name what to fix.
fn cli_error(e: memberhub::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.describe())
}

async fn staff(settings: Settings, command: StaffCommand) -> anyhow::Result<()> {
    use memberhub::auth::staff::Role;
    use memberhub::staff::accounts::{self, NewAccount, Username};

    let conn = db::connect(&settings.database).await?;
    // A fresh installation has no schema yet; creating the first admin must just work.
    db::migrate(&conn).await?;
    match command {
        StaffCommand::Create {
            username,
            role,
            store,
            display_name,
            password_stdin,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!("--role must be admin, manager, consultant or front_desk")
            })?;
            let username = Username::parse(&username).map_err(cli_error)?;
            let display_name = display_name.unwrap_or_else(|| username.as_str().to_string());
            let display_name =
                accounts::display_name(&display_name, "display-name").map_err(cli_error)?;
            let password = if password_stdin {
                Some(read_password_stdin()?)
            } else {
                None
            };
            let (account, generated) = accounts::create_account(
                &conn,
                NewAccount {
                    username,
                    display_name,
                    role,
                    store_id: store,
                    password,
                },
                None,
            )
            .await
            .map_err(cli_error)?;
            let scope = match account.store_id {
                Some(id) => format!("store {id}"),
                None => "the whole chain".to_string(),
            };
            say!(
                "created staff account {} (id {}, {}, {scope})",
                account.username,
                account.id,
                role.as_str()
            );
            if let Some(p) = generated {
                say!("password: {p}");
                say!("(shown once; sign in and change it with POST /api/v1/staff/auth/password)");
            }
        }
        StaffCommand::ResetPassword {
            username,
            password_stdin,
        } => {
            let username = Username::parse(&username).map_err(cli_error)?;
            let account = accounts::find_by_username(&conn, &username)
                .await
                .map_err(cli_error)?;
            let password = if password_stdin {
                Some(read_password_stdin()?)
            } else {
                None
            };
            let given = password.is_some();
            let new = accounts::reset_password(&conn, &account, password, None)
                .await
                .map_err(cli_error)?;
            say!("password of {} reset; its sessions ended", account.username);
            if !given {
                say!("password: {new}");
            }
        }
    }
    Ok(())
}
