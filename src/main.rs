use std::io::ErrorKind;

use clap::Parser;
use convmeta::cli::{run, Cli};

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONVMETA_LOG").unwrap_or_else(|_| "warn,convmeta=info".into()),
        )
        .with_writer(|| convmeta::cli::LogWriter)
        // A log line that cannot be written (a closed stderr) is lost quietly: tracing would
        // say so with `eprintln!`, which panics on that same stderr.
        .log_internal_errors(false)
        .with_ansi(convmeta::cli::colors())
        .init();
    if let Err(e) = run(cli) {
        // A reader that stopped reading (`convmeta list | head`) got what it wanted.
        if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == ErrorKind::BrokenPipe)) {
            std::process::exit(0);
        }
        // One line: each cause once (library errors often repeat their source's text, and
        // SQLite's add "Error code N" to a message already given).
        let mut line = String::new();
        for cause in e.chain().map(ToString::to_string) {
            for part in cause.split(": ") {
                if !line.contains(part) && !part.starts_with("Error code ") {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(part);
                }
            }
        }
        convmeta::cli::say(format_args!("convmeta: {line}"));
        std::process::exit(1);
    }
}
