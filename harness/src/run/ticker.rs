//! A ticker that measures how late the harness's own timers fire. On a starved machine
//! (more cells than cores, a compile next door) every timing in the history stretches;
//! recording the lateness lets the latency rule tell a starved run from a slow client.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::history::{Event, Recorder};

/// Ticks this often; lateness is the delay past each expected tick.
const TICK: Duration = Duration::from_millis(100);
/// Lateness is recorded once per this many ticks, as the worst seen.
const TICKS_PER_RECORD: u32 = 10;
/// Lateness below this is noise and not recorded.
const NOTEWORTHY_MS: u64 = 20;

/// Stops the ticker when dropped.
pub struct Ticker(JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn start(recorder: Arc<Recorder>) -> Ticker {
    Ticker(tokio::spawn(async move {
        let mut worst = 0u64;
        let mut ticks = 0u32;
        let mut expected = tokio::time::Instant::now() + TICK;
        loop {
            tokio::time::sleep_until(expected).await;
            let late = tokio::time::Instant::now().saturating_duration_since(expected);
            worst = worst.max(late.as_millis() as u64);
            ticks += 1;
            if ticks == TICKS_PER_RECORD {
                if worst >= NOTEWORTHY_MS {
                    recorder.record(None, Event::SchedulingDelay { max_ms: worst });
                }
                worst = 0;
                ticks = 0;
            }
            // The next tick is due a period after this one actually fired.
            expected = tokio::time::Instant::now() + TICK;
        }
    }))
}
