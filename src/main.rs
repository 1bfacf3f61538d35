use std::io::ErrorKind;

use convmeta::cli::{run, Cli};

fn main() {
    convmeta::cli::completions::answer_if_asked();
    let cli = Cli::parse_checked();
    convmeta::cli::init_logging(&cli);
    let failure_code = cli.failure_code();
    let e = match run(cli) {
        Ok(code) => std::process::exit(code.into()),
        Err(e) => e,
    };
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
    std::process::exit(failure_code);
}
