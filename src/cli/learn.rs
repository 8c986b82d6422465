//! `bankrec learn`: fold confirmed and rejected matches into a memory file that later
//! reconciliations use.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bankrec::matching::Feedback;
use clap::Args;
use serde_json::Value;

use super::reconcile::{load_inputs, load_memory};

/// Arguments of `bankrec learn`.
#[derive(Debug, Args)]
pub struct LearnArgs {
    /// The bank statement the matches refer to.
    #[arg(long)]
    statement: PathBuf,
    /// The books' records the matches refer to (CSV or JSON).
    #[arg(long)]
    records: PathBuf,
    /// Confirmed (and `"status": "rejected"`) groups, shaped like the `matches` of
    /// `bankrec reconcile --json` (or that whole output).
    #[arg(long)]
    confirmed: PathBuf,
    /// The memory file to create or update.
    #[arg(long)]
    memory: PathBuf,
}

/// Runs `bankrec learn`.
pub fn run(args: LearnArgs) -> anyhow::Result<ExitCode> {
    let (bank, records, _) = load_inputs(&args.statement, &args.records, None, None)?;
    let text = std::fs::read_to_string(&args.confirmed)
        .with_context(|| format!("cannot read {}", args.confirmed.display()))?;
    let feedback = read_feedback(&text).with_context(|| format!("cannot use {}", args.confirmed.display()))?;
    let mut memory = load_memory(&args.memory)?;
    let stats = memory.learn(&feedback, &bank, &records);
    std::fs::write(&args.memory, memory.to_json())
        .with_context(|| format!("cannot write memory {}", args.memory.display()))?;
    println!(
        "learned {} confirmed and {} rejected group(s){} into {}",
        stats.confirmed,
        stats.rejected,
        if stats.skipped > 0 { format!(", skipped {} naming unknown ids", stats.skipped) } else { String::new() },
        args.memory.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads groups from a JSON array of match objects, or an object holding them under `matches`.
fn read_feedback(text: &str) -> anyhow::Result<Vec<Feedback>> {
    let value: Value = serde_json::from_str(text)?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut o) => match o.remove("matches").or_else(|| o.remove("confirmed")) {
            Some(Value::Array(items)) => items,
            _ => anyhow::bail!("expected an array of matches or an object with a `matches` array"),
        },
        _ => anyhow::bail!("expected an array of matches"),
    };
    let ids = |v: &Value, key: &str, i: usize| -> anyhow::Result<Vec<String>> {
        match v.get(key) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| anyhow::anyhow!("match {}: `{key}` must hold strings", i + 1))
                })
                .collect(),
            _ => anyhow::bail!("match {}: `{key}` is required (an array of ids)", i + 1),
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let status = v.get("status").and_then(Value::as_str).unwrap_or("matched");
            Ok(Feedback {
                bank_ids: ids(v, "bank_ids", i)?,
                record_ids: ids(v, "record_ids", i)?,
                confirmed: !status.eq_ignore_ascii_case("rejected"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_is_read_from_matches_or_a_whole_reconcile_output() {
        let list = r#"[{"bank_ids":["b1"],"record_ids":["r1","r2"],"status":"matched"},
                       {"bank_ids":["b2"],"record_ids":["r3"],"status":"rejected"}]"#;
        let fb = read_feedback(list).unwrap_or_default();
        assert_eq!(fb.len(), 2);
        assert!(fb[0].confirmed && !fb[1].confirmed);
        let whole = format!(r#"{{"summary":{{}},"matches":{list}}}"#);
        assert_eq!(read_feedback(&whole).unwrap_or_default(), fb);
        assert!(read_feedback(r#"[{"bank_ids":"b1"}]"#).is_err());
    }
}
