//! The history: one append-only jsonl file per run, one clock (ms since the Unix epoch).
//!
//! Every line is a [`Record`]: a sequence number, a timestamp, the member it came from
//! (driver events only) and the event itself. Driver events keep the driver's own
//! `timestamp`; harness and producer events are stamped by the harness. The checker
//! reads nothing but this file, so a history can be re-checked anywhere.

mod event;
mod reader;
mod writer;

pub use event::*;
pub use reader::read_history;
pub use writer::{now_ms, HistoryWriter};
