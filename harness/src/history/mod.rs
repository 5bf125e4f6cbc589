//! The history: one append-only jsonl file per run, one clock (ms since the Unix epoch).
//!
//! Every line is a [`Record`]: a sequence number, a timestamp, the member it came from
//! (driver events only) and the event itself. Driver events keep the driver's own
//! `timestamp`; harness and producer events are stamped by the harness. The checker
//! reads nothing but this file, so a history can be re-checked anywhere.
//!
//! The [`Recorder`] is the single writer of a run's history: members, the producer and
//! the fault executor all record through it, and the runner waits on the live
//! [`GroupView`] it folds from the same records.

mod event;
mod kinds;
mod reader;
mod recorder;
mod view;
mod writer;

pub use event::*;
pub use kinds::{FaultKind, Protocol, Rule, ViolationKind};
pub use reader::read_history;
pub use recorder::{Recorder, Waited};
pub use view::{Exit, GroupView};
pub use writer::{now_ms, HistoryWriter};
