use clap::{Args, CommandFactory};

use super::Cli;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

/// Prints a completion script: `convmeta completions bash > ~/.local/share/bash-completion/completions/convmeta`.
pub fn run(a: CompletionsArgs) -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "convmeta", &mut out);
    std::io::Write::write_all(&mut super::stdout(), &out)?;
    Ok(())
}
