use std::io::Write;

use clap::Args;

use super::{printable, Target};

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    target: Target,
    /// The conversation id (its directory name).
    id: String,
    /// Print the item as JSON, exactly as the HTTP endpoint serves it.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ShowArgs) -> anyhow::Result<()> {
    let index = a.target.open()?;
    index.refresh()?;
    let item = index.show(&a.id)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{item}")?;
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_str(&crate::json::without_lone_surrogates(&item))?;
    if let Some(fields) = v.as_object() {
        for (k, v) in fields {
            match v {
                serde_json::Value::String(s) => writeln!(out, "{k:>24}: {}", printable(s))?,
                other => writeln!(out, "{k:>24}: {other}")?,
            }
        }
    }
    Ok(())
}
