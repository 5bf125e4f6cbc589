//! The single writer of a run's history. Every event goes through here: it is appended
//! (flushed) to the history and folded into the live [`GroupView`] the runner waits on.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::sync::watch;

use super::view::GroupView;
use super::{now_ms, Event, HistoryWriter, Ms};

struct Inner {
    writer: HistoryWriter,
    view: GroupView,
    /// Set when the run cannot go on (a driver broke the protocol, the disk failed).
    broken: Option<String>,
    /// Lenient (driver-check): lines that break the driver protocol are collected here
    /// instead of breaking the run.
    lenient: Option<Vec<String>>,
}

pub struct Recorder {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

/// How a wait ended when it did not fail outright.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    Done,
    /// The condition did not hold in time; the text says what the group looked like.
    TimedOut(String),
}

impl Recorder {
    pub fn new(writer: HistoryWriter) -> Self {
        Self {
            inner: Mutex::new(Inner {
                writer,
                view: GroupView::default(),
                broken: None,
                lenient: None,
            }),
            changed: watch::channel(0).0,
        }
    }

    /// Records a harness or producer event stamped now.
    pub fn record(&self, member: Option<&str>, event: Event) -> Ms {
        let ts = now_ms();
        self.record_at(ts, member, event);
        ts
    }

    /// Records an event with its own timestamp (driver events).
    pub fn record_at(&self, ts: Ms, member: Option<&str>, event: Event) {
        let mut inner = self.inner.lock().expect("recorder lock");
        match inner.writer.append(ts, member, event) {
            Ok(record) => inner.view.apply(&record),
            Err(e) => inner.broken = Some(format!("{e:#}")),
        }
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
    }

    /// A recorder that collects driver protocol errors instead of failing on them.
    pub fn lenient(writer: HistoryWriter) -> Self {
        let r = Recorder::new(writer);
        r.lock().lenient = Some(Vec::new());
        r
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("recorder lock")
    }

    /// A driver printed a line that breaks the protocol: the run fails, or in lenient
    /// mode the line is collected and the run goes on. Returns whether the run failed.
    pub fn protocol_error(&self, message: String) -> bool {
        let mut inner = self.lock();
        if let Some(collected) = inner.lenient.as_mut() {
            collected.push(message);
            return false;
        }
        drop(inner);
        self.fail(message);
        true
    }

    /// The protocol errors collected in lenient mode.
    pub fn protocol_errors(&self) -> Vec<String> {
        self.lock().lenient.clone().unwrap_or_default()
    }

    /// Marks the run as broken; every wait fails with this message.
    pub fn fail(&self, message: String) {
        let mut inner = self.inner.lock().expect("recorder lock");
        inner.broken.get_or_insert(message);
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
    }

    pub fn broken(&self) -> Option<String> {
        self.inner.lock().expect("recorder lock").broken.clone()
    }

    pub fn view<T>(&self, f: impl FnOnce(&GroupView) -> T) -> T {
        f(&self.inner.lock().expect("recorder lock").view)
    }

    /// Waits until `cond` holds on the live view. Fails if the run broke meanwhile.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        cond: impl Fn(&GroupView) -> bool,
    ) -> Result<Waited> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let inner = self.inner.lock().expect("recorder lock");
                if let Some(msg) = &inner.broken {
                    bail!("{msg}");
                }
                if cond(&inner.view) {
                    return Ok(Waited::Done);
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    return Ok(Waited::TimedOut(self.view(|v| v.describe())));
                }
            }
        }
    }
}
