use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::{Event, Ms, Record};

pub fn now_ms() -> Ms {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Ms)
        .unwrap_or(0)
}

/// Appends records and flushes after each one, so a run that crashes still leaves a
/// checkable history behind.
pub struct HistoryWriter {
    path: PathBuf,
    out: BufWriter<File>,
    next_seq: u64,
}

impl HistoryWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create history file {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            next_seq: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event; `ts` is the event's own time (driver timestamp or harness clock).
    pub fn append(&mut self, ts: Ms, member: Option<&str>, event: Event) -> Result<Record> {
        let record = Record {
            seq: self.next_seq,
            ts,
            member: member.map(str::to_owned),
            event,
        };
        self.next_seq += 1;
        serde_json::to_writer(&mut self.out, &record)?;
        self.out.write_all(b"\n")?;
        self.out
            .flush()
            .with_context(|| format!("cannot write history {}", self.path.display()))?;
        Ok(record)
    }
}
