//! The `portcullis` command: parse the configuration, start logging, run the command.

use clap::Parser;
use portcullis::config::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the C library's allocator: a page's many small allocations cost less,
/// and the 19 MiB that each password hash needs is given back to the system afterwards
/// (glibc raised its mmap threshold after the first one and kept every later one in its
/// heaps: 450 MiB after 64 sign-ins).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.config.log_format);
    let result = match &cli.command {
        None | Some(Command::Serve) => portcullis::server::serve(&cli.config).await,
        Some(Command::Migrate) => portcullis::cli::migrate(&cli.config).await,
        Some(Command::User(command)) => portcullis::cli::user(&cli.config, command).await,
        Some(Command::Seed(command)) => portcullis::cli::seed(&cli.config, command).await,
        Some(Command::Import(command)) => portcullis::cli::import(&cli.config, command).await,
        Some(Command::Token(command)) => portcullis::cli::token(&cli.config, command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
