//! One direction of one connection: a reader that cuts the byte stream into frames and a
//! writer that applies the rules in force to each frame before forwarding it.
//!
//! The two halves run concurrently and talk through a channel bounded in bytes (a
//! semaphore), so a held or delayed direction pushes back on its sender the way a stalled
//! TCP path would, instead of buffering without limit.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use rand::rngs::StdRng;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{debug, trace};

use super::compat;
use super::conn::{ConnState, Stop};
use super::frame::{self, ReadOutcome};
use super::rules::{Direction, FrameInfo, RuleId, RuleSet, Verdict};

/// A complete frame on its way through the proxy.
struct Frame {
    /// Size prefix included: forwarded as is.
    bytes: Vec<u8>,
    api_key: Option<i16>,
    api_version: Option<i16>,
    correlation_id: Option<i32>,
    /// A SyncGroup request carrying the leader's assignments.
    leader_sync: bool,
    /// When latency starts counting: arrival, or the moment a blackhole let it go.
    ready_at: Instant,
    /// Its share of the direction's buffer budget, returned when the frame leaves.
    _budget: OwnedSemaphorePermit,
}

enum Msg {
    Frame(Frame),
    /// The source closed inside a frame: the partial frame is discarded and the whole
    /// connection closes once the complete frames before it are delivered.
    Truncated,
}

/// What a direction needs from its connection.
pub(crate) struct Pump<'a> {
    pub direction: Direction,
    pub conn: &'a ConnState,
    pub rules: watch::Receiver<Arc<RuleSet>>,
    pub rng: StdRng,
    /// Most bytes of complete frames queued or held in this direction.
    pub budget_bytes: u32,
    /// Fix the mock broker's responses (see `compat`).
    pub mock_responses: bool,
}

impl Pump<'_> {
    /// Forwards frames from `src` to `dst` until `src` ends and everything read has been
    /// delivered (then `dst` is half-closed), or until the connection must stop.
    pub(crate) async fn run<R, W>(self, src: R, dst: W) -> Result<(), Stop>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(self.budget_bytes as usize));
        let reader = read_frames(
            src,
            Reading {
                direction: self.direction,
                conn: self.conn,
                budget_bytes: self.budget_bytes,
                mock_responses: self.mock_responses,
            },
            tx,
            budget,
        );
        let mut rules = self.rules;
        let current = rules.borrow_and_update().clone();
        let writer = Writer {
            dst,
            direction: self.direction,
            conn: self.conn,
            current,
            rules,
            rng: self.rng,
            held: VecDeque::new(),
        };
        tokio::try_join!(reader, writer.run(rx)).map(|_| ())
    }
}

/// What the reading half of a direction needs to know.
struct Reading<'a> {
    direction: Direction,
    conn: &'a ConnState,
    budget_bytes: u32,
    mock_responses: bool,
}

async fn read_frames<R: AsyncRead + Unpin>(
    mut src: R,
    reading: Reading<'_>,
    tx: mpsc::UnboundedSender<Msg>,
    budget: Arc<Semaphore>,
) -> Result<(), Stop> {
    let Reading {
        direction,
        conn,
        budget_bytes,
        mock_responses,
    } = reading;
    loop {
        let mut bytes = match frame::read_frame(&mut src).await {
            Ok(ReadOutcome::Frame(bytes)) => bytes,
            Ok(ReadOutcome::Eof) => return Ok(()),
            Ok(ReadOutcome::Truncated { got, want }) => {
                debug!(
                    conn = conn.id,
                    ?direction,
                    got,
                    want,
                    "peer closed mid-frame"
                );
                let _ = tx.send(Msg::Truncated);
                return Ok(());
            }
            Err(e) => return Err(Stop::Io(direction, e)),
        };
        let (api_key, api_version, correlation_id) = match direction {
            Direction::ToClient => {
                let corr = frame::parse_response_correlation_id(&bytes);
                let answered = corr.and_then(|c| conn.answered(c));
                if let (true, Some((key, version))) = (mock_responses, answered) {
                    // Before the budget is taken: a fix may change the frame's size.
                    bytes = compat::fix_mock_response(key, version, bytes);
                }
                (answered.map(|a| a.0), answered.map(|a| a.1), corr)
            }
            _ => match frame::parse_request_header(&bytes) {
                Some(h) => {
                    conn.learn_client_id(h.client_id);
                    (Some(h.api_key), Some(h.api_version), Some(h.correlation_id))
                }
                None => (None, None, None),
            },
        };
        trace!(
            conn = conn.id,
            ?direction,
            len = bytes.len(),
            ?api_key,
            ?correlation_id,
            "frame"
        );
        // A frame larger than the whole budget waits for the budget to drain, then goes
        // alone.
        let permits = u32::try_from(bytes.len())
            .unwrap_or(u32::MAX)
            .min(budget_bytes);
        let leader_sync = direction == Direction::ToBroker && frame::is_leader_sync_group(&bytes);
        let permit = budget
            .clone()
            .acquire_many_owned(permits)
            .await
            .expect("the budget semaphore is never closed");
        let frame = Frame {
            bytes,
            api_key,
            api_version,
            correlation_id,
            leader_sync,
            ready_at: Instant::now(),
            _budget: permit,
        };
        if tx.send(Msg::Frame(frame)).is_err() {
            return Ok(()); // the writer stopped: the connection is closing anyway
        }
    }
}

struct Held {
    frame: Frame,
    by: RuleId,
}

struct Writer<'a, W> {
    dst: W,
    direction: Direction,
    conn: &'a ConnState,
    rules: watch::Receiver<Arc<RuleSet>>,
    /// The rules every frame in this direction is judged by, held ones included.
    current: Arc<RuleSet>,
    rng: StdRng,
    /// Frames a blackhole holds, oldest first.
    held: VecDeque<Held>,
}

impl<W: AsyncWrite + Unpin> Writer<'_, W> {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) -> Result<(), Stop> {
        let mut input_open = true;
        let mut truncated = false;
        // Held frames keep the direction open even after its source ended: like a FIN
        // stuck behind a partition, the end is delivered after what was held.
        while input_open || !self.held.is_empty() {
            tokio::select! {
                biased;
                changed = self.rules.changed() => {
                    if changed.is_err() {
                        return Err(Stop::Shutdown);
                    }
                    self.refresh().await?;
                }
                msg = rx.recv(), if input_open => match msg {
                    Some(Msg::Frame(f)) => {
                        self.refresh().await?;
                        self.dispatch(f, None).await?;
                    }
                    Some(Msg::Truncated) => truncated = true,
                    None => input_open = false,
                },
            }
        }
        if truncated {
            return Err(Stop::PeerGone(self.direction));
        }
        // Half-close: the other direction may still carry responses. A peer that is
        // already gone makes this fail, which changes nothing.
        let _ = self.dst.shutdown().await;
        Ok(())
    }

    /// Moves to the latest rules. If they changed, held frames are judged again first:
    /// a new frame is never judged by newer rules than the frames held before it, so a
    /// heal releases the held frames ahead of anything that arrives after it.
    async fn refresh(&mut self) -> Result<(), Stop> {
        let latest = self.rules.borrow_and_update().clone();
        // Every change installs a new `Arc` (`current` keeps the old one alive, so
        // `make_mut` must copy), hence pointer equality means "unchanged".
        if Arc::ptr_eq(&latest, &self.current) {
            return Ok(());
        }
        self.current = latest;
        self.rejudge_held().await
    }

    /// Judges held frames again, oldest first; those no longer held go out (or are
    /// dropped, delayed, reset) in their original order.
    async fn rejudge_held(&mut self) -> Result<(), Stop> {
        let held = std::mem::take(&mut self.held);
        let released = held.len();
        for h in held {
            self.dispatch(h.frame, Some(h.by)).await?;
        }
        if released > 0 {
            debug!(conn = self.conn.id, direction = ?self.direction, still_held = self.held.len(),
                was_held = released, "rules changed, held frames judged again");
        }
        Ok(())
    }

    async fn dispatch(&mut self, mut frame: Frame, held_by: Option<RuleId>) -> Result<(), Stop> {
        let verdict = {
            let info = FrameInfo {
                client: self.conn.client_id(),
                direction: self.direction,
                api_key: frame.api_key,
                len: frame.bytes.len(),
                leader_sync: frame.leader_sync,
            };
            // Behind a frame a stall holds, everything waits in line.
            let stalled = self
                .held
                .back()
                .map(|h| h.by)
                .filter(|id| self.current.stalls(*id));
            match stalled {
                Some(id) => self.current.hold_behind(id, &info, held_by == Some(id)),
                None => self.current.judge(&info, held_by, &mut self.rng),
            }
        };
        match verdict {
            Verdict::Reset(id) => return Err(Stop::Reset(id)),
            Verdict::Drop => {
                trace!(conn = self.conn.id, api_key = ?frame.api_key, "frame dropped");
                return Ok(());
            }
            Verdict::Hold(by) => {
                if held_by.is_some() && held_by != Some(by) {
                    trace!(conn = self.conn.id, %by, "frame now held by another rule");
                }
                self.held.push_back(Held { frame, by });
                return Ok(());
            }
            Verdict::Delay(d) => {
                if held_by.is_some() {
                    frame.ready_at = Instant::now();
                }
                // Sleeping in line keeps frames in order: a later frame cannot leave
                // before this one, whatever its own draw.
                tokio::time::sleep_until(frame.ready_at + d).await;
            }
            Verdict::Pass => {}
        }
        self.send(frame).await
    }

    async fn send(&mut self, frame: Frame) -> Result<(), Stop> {
        if self.direction == Direction::ToBroker {
            // Recorded before the write: the response cannot arrive earlier.
            if let (Some(api), Some(corr)) = (frame.api_key, frame.correlation_id) {
                self.conn.sent(corr, api, frame.api_version.unwrap_or(0));
            }
        }
        self.dst
            .write_all(&frame.bytes)
            .await
            .map_err(|e| Stop::Io(self.direction, e))
    }
}

/// Whether an error only says the peer went away (a normal way for a connection to end).
pub(crate) fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}
