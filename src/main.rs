//! The `session-bridge` command: the service and its operator tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use session_bridge::config::{Config, Overrides};
use session_bridge::tokens::cli::{KeysCommand, TokenCommand};
use session_bridge::users::cli::UsersCommand;

/// One authenticated identity for a session-based legacy stack and a
/// JWT-based API stack.
#[derive(Debug, Parser)]
#[command(name = "session-bridge", version, about)]
struct Cli {
    /// Configuration file (TOML). Environment variables `SESSION_BRIDGE__…`
    /// override it.
    #[arg(
        long,
        short,
        global = true,
        value_name = "FILE",
        env = "SESSION_BRIDGE_CONFIG"
    )]
    config: Option<PathBuf>,
    /// Directory for local state (embedded store, generated keys).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default when no command is given).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Public base URL (`iss` of minted tokens), e.g.
        /// https://auth.example.com.
        #[arg(long, value_name = "URL")]
        public_url: Option<url::Url>,
    },
    /// Check the configuration and print the problems found.
    CheckConfig,
    /// Manage the signing key ring (generate, rotate, retire, list).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mint a token (development and tests) or verify one against the
    /// configured trust.
    #[command(subcommand)]
    Token(TokenCommand),
    /// DynamoDB administration.
    #[command(subcommand)]
    Dynamodb(DynamoDbCommand),
    /// Manage the built-in users file.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Debug, Subcommand)]
enum DynamoDbCommand {
    /// Create the sessions and revocation tables (idempotent) and enable TTL.
    CreateTables,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (listen, public_url) = match &cli.command {
        Some(Command::Serve { listen, public_url }) => (*listen, public_url.clone()),
        Some(Command::Token(cmd)) => cmd.issuer_overrides(),
        _ => (None, None),
    };
    let overrides = Overrides {
        listen,
        data_dir: cli.data_dir.clone(),
        public_url,
    };
    let config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("session-bridge: {}", session_bridge::error_chain(&err));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("session-bridge: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(
        cli.command.unwrap_or(Command::Serve {
            listen: None,
            public_url: None,
        }),
        config,
    ))
}

async fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::Serve { .. } => {
            session_bridge::telemetry::init(&config.log);
            match session_bridge::service::serve(config, session_bridge::service::shutdown_signal())
                .await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!(error = %session_bridge::error_chain(&err), "session-bridge stopped");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keys(cmd) => {
            session_bridge::tokens::cli::run_keys(cmd, &config.tokens, &config.data_dir).await
        }
        Command::Token(cmd) => {
            session_bridge::tokens::cli::run_token(
                cmd,
                &config.tokens,
                &config.public_url(),
                &config.data_dir,
            )
            .await
        }
        Command::Users(cmd) => {
            session_bridge::users::cli::run_users(cmd, &config.users, &config.data_dir).await
        }
        Command::Dynamodb(DynamoDbCommand::CreateTables) => {
            let (client, tables) =
                session_bridge::stores::dynamodb_client(&config.store.dynamodb).await;
            match session_bridge_dynamodb::create_tables(&client, &tables).await {
                Ok(()) => {
                    println!(
                        "tables {} and {} are ready",
                        tables.sessions, tables.revocation
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("session-bridge: {}", session_bridge::error_chain(&err));
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig => {
            println!("configuration ok");
            ExitCode::SUCCESS
        }
    }
}
