use clap::Parser;
use convmeta::cli::{run, Cli};

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONVMETA_LOG").unwrap_or_else(|_| "warn,convmeta=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(cli) {
        eprintln!("convmeta: {e:#}");
        std::process::exit(1);
    }
}
