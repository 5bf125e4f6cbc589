//! How many cells run at once. Cells mostly wait on session timeouts, so a 2-core
//! machine can carry several; but too many distort every timing they measure. With
//! `Jobs::Auto` the limit starts at the number of cores and moves with the harness's
//! own scheduling delay in the cells that just finished: up while the machine keeps
//! time, down as soon as a cell saw it starve.

use std::sync::Mutex;

use tokio::sync::Notify;

/// The concurrency policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    Fixed(usize),
    /// Adaptive, between 1 and `max`.
    Auto {
        start: usize,
        max: usize,
    },
}

/// A finished cell's worst scheduling delay above which the limit goes down.
pub const STARVED_MS: u64 = 250;
/// ... and below which it may go up.
pub const KEEPS_TIME_MS: u64 = 60;

pub struct Slots {
    jobs: Jobs,
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    limit: usize,
    running: usize,
}

/// A running cell's slot, given back when dropped.
pub struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.lock().running -= 1;
        self.0.changed.notify_waiters();
    }
}

impl Slots {
    pub fn new(jobs: Jobs) -> Self {
        let limit = match jobs {
            Jobs::Fixed(n) => n.max(1),
            Jobs::Auto { start, max } => start.clamp(1, max.max(1)),
        };
        Slots {
            jobs,
            state: Mutex::new(State { limit, running: 0 }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a free slot under the current limit.
    pub async fn acquire(&self) -> Slot<'_> {
        loop {
            let notified = self.changed.notified();
            {
                let mut s = self.lock();
                if s.running < s.limit {
                    s.running += 1;
                    return Slot(self);
                }
            }
            notified.await;
        }
    }

    /// Tells the limiter how late the harness's timers ran in a cell that finished.
    pub fn finished(&self, max_scheduling_delay_ms: u64) {
        let Jobs::Auto { max, .. } = self.jobs else {
            return;
        };
        let mut s = self.lock();
        if max_scheduling_delay_ms >= STARVED_MS {
            s.limit = (s.limit - 1).max(1);
        } else if max_scheduling_delay_ms <= KEEPS_TIME_MS && s.limit < max {
            s.limit += 1;
        }
        drop(s);
        self.changed.notify_waiters();
    }

    pub fn limit(&self) -> usize {
        self.lock().limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_follows_starvation_within_its_bounds() {
        let s = Slots::new(Jobs::Auto { start: 2, max: 4 });
        assert_eq!(s.limit(), 2);
        for _ in 0..5 {
            s.finished(10);
        }
        assert_eq!(s.limit(), 4, "keeps time: up to the max");
        s.finished(100);
        assert_eq!(s.limit(), 4, "in between: stays");
        for _ in 0..5 {
            s.finished(900);
        }
        assert_eq!(s.limit(), 1, "starved: down to one");
        let fixed = Slots::new(Jobs::Fixed(3));
        fixed.finished(900);
        assert_eq!(fixed.limit(), 3);
    }

    #[tokio::test]
    async fn slots_are_given_back() {
        let s = Slots::new(Jobs::Fixed(1));
        let a = s.acquire().await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), s.acquire()).await;
        assert!(waiting.is_err(), "the one slot is taken");
        drop(a);
        let _b = tokio::time::timeout(std::time::Duration::from_millis(500), s.acquire())
            .await
            .expect("a slot freed");
    }
}
