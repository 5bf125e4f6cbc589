use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Record;

/// Reads a history file. A line that is not a record is an error naming the line; a
/// torn last line (the run died mid-write) is skipped with a warning.
pub fn read_history(path: &Path) -> Result<Vec<Record>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read history {}", path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) => records.push(r),
            Err(e) if i + 1 == lines.len() && !text.ends_with('\n') => {
                tracing::warn!("{}: skipping torn last line {}: {e}", path.display(), i + 1);
            }
            Err(e) => bail!(
                "{}:{}: not a history record ({e}): {}",
                path.display(),
                i + 1,
                truncate(line, 200)
            ),
        }
    }
    if records.is_empty() {
        bail!("{}: the history is empty", path.display());
    }
    Ok(records)
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_owned()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}
