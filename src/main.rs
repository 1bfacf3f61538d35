use std::io::ErrorKind;

use clap::Parser;
use convmeta::cli::{run, Cli};

fn main() {
    let cli = Cli::parse();
    let default_filter = || tracing_subscriber::EnvFilter::new("warn,convmeta=info");
    // A filter that does not parse is said once, after logging starts, and the default used:
    // a typo in a log setting should not stop the command.
    let (filter, bad_filter) = match std::env::var("CONVMETA_LOG") {
        Ok(text) => match tracing_subscriber::EnvFilter::try_new(&text) {
            Ok(filter) => (filter, None),
            Err(e) => (
                default_filter(),
                Some(format!("CONVMETA_LOG={text:?} is not a log filter ({e}); logging as by default")),
            ),
        },
        Err(std::env::VarError::NotUnicode(_)) => {
            (default_filter(), Some("CONVMETA_LOG is not UTF-8; logging as by default".into()))
        }
        Err(std::env::VarError::NotPresent) => (default_filter(), None),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| convmeta::cli::LogWriter)
        // A log line that cannot be written (a closed stderr) is lost quietly: tracing would
        // say so with `eprintln!`, which panics on that same stderr.
        .log_internal_errors(false)
        .with_ansi(convmeta::cli::colors())
        .init();
    if let Some(why) = bad_filter {
        tracing::warn!("{why}");
    }
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
