//! Kafka-aware TCP fault proxy: one loopback listener in front of one broker.
//!
//! Each accepted client connection gets its own upstream connection; bytes are cut into
//! Kafka frames (`i32 size` + body) so faults can target a client id (from the
//! connection's first request), a direction, or an API (responses are mapped back to the
//! API of the request they answer through their correlation id). Rules are added and
//! removed at runtime and apply at once to existing and new connections.
//!
//! # Buffering
//! Frames are forwarded whole: each is read into one buffer sized from its size prefix
//! (grown by doubling past 1 MiB, so a bogus size cannot reserve memory that never
//! arrives). Each direction of each connection queues at most `buffer_bytes` of complete
//! frames (a larger frame goes alone); when a blackhole or latency fills that, the proxy
//! stops reading and TCP pushes back on the sender, as on a stalled path.
//!
//! # Ordering
//! Within a connection and direction, frames leave in the order they arrived, with one
//! deliberate exception: a blackhole with an `api_key` holds only that API's frames, so
//! later frames of other APIs overtake the held ones (held frames still leave in order
//! among themselves, on heal, before any frame that arrives after the heal). The broker
//! then answers in its own receive order, so responses reach the client out of its send
//! order. librdkafka matches responses by correlation id and copes; the Java client
//! requires in-order responses per connection and will fail the connection
//! ("correlation id ... does not match"). For a partition that keeps the stream intact,
//! use a blackhole without `api_key`, or a `Stall`: from the first frame of its API on,
//! it holds everything behind that frame too, in order. Latency never reorders: a frame
//! waits for the one ahead of it, whatever its own draw.
//!
//! # Precedence
//! `Reset` > `DropApi` > `Blackhole`, `Stall` > `Latency` (see [`Action`]): the most destructive
//! matching rule wins; latencies add up. Held frames are judged again whenever the rule
//! set changes, and latency for a released frame counts from its release.
//!
//! # Closing
//! A peer closing cleanly between frames is passed on as a half-close after everything
//! read from it is delivered (a close held behind a blackhole waits for the heal). A peer
//! closing mid-frame loses the torn frame; once the complete frames before it are
//! delivered, both sides are closed (FIN). An I/O error closes both sides at once. A
//! reset rule closes both sides with RST; it reaches every matching connection open when
//! it is added, even if it is removed right after. Dropping the [`Proxy`] stops the
//! listener and closes every connection; [`Proxy::shutdown`] does the same and returns
//! once they are all gone.

mod compat;
mod conn;
mod frame;
mod pump;
mod rules;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

pub use frame::{
    is_leader_sync_group, parse_request_header, parse_response_correlation_id, RequestHeader,
};
pub use rules::{Action, Direction, Match, Rule, RuleError, RuleId, RuleStats};

use conn::ConnState;
use rules::{Counters, RuleSet, StatsTable};

/// Kafka API keys the harness targets most.
pub mod api {
    pub const PRODUCE: i16 = 0;
    pub const FETCH: i16 = 1;
    pub const METADATA: i16 = 3;
    pub const OFFSET_COMMIT: i16 = 8;
    pub const OFFSET_FETCH: i16 = 9;
    pub const FIND_COORDINATOR: i16 = 10;
    pub const JOIN_GROUP: i16 = 11;
    pub const HEARTBEAT: i16 = 12;
    pub const LEAVE_GROUP: i16 = 13;
    pub const SYNC_GROUP: i16 = 14;
    pub const API_VERSIONS: i16 = 18;
    pub const CONSUMER_GROUP_HEARTBEAT: i16 = 68;
}

/// Tuning for [`Proxy::start_with`].
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Seeds latency jitter (per connection and direction); random when `None`.
    pub seed: Option<u64>,
    /// Most bytes of complete frames queued or held per connection and direction before
    /// the proxy stops reading from that side.
    pub buffer_bytes: u32,
    /// Fix the responses of librdkafka's mock broker that no Kafka broker would send
    /// (see `compat`), for clients other than librdkafka.
    pub mock_responses: bool,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            seed: None,
            buffer_bytes: 64 << 20,
            mock_responses: false,
        }
    }
}

/// State the listener, the connections and the `Proxy` handle share.
pub(crate) struct Shared {
    upstream: SocketAddr,
    /// The rules in force; connections subscribe to be told of every change. Behind an
    /// `Arc` so a pump can keep a snapshot across awaits (a change makes a new set).
    rules: watch::Sender<Arc<RuleSet>>,
    stats: Mutex<StatsTable>,
    next_rule: AtomicU64,
    /// Live connections by id, so a reset rule can reach each one it matches.
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    seed: u64,
    budget_bytes: u32,
    mock_responses: bool,
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, StatsTable> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn conns(&self) -> MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn count_reset(&self, rule: RuleId) {
        if let Some(c) = self.stats().get(&rule) {
            c.count_reset();
        }
    }
}

/// A connection's entry in the registry, removed when the connection's task ends (or is
/// aborted before it ever ran).
pub(crate) struct Registered {
    shared: Arc<Shared>,
    state: Arc<ConnState>,
}

impl Registered {
    fn new(shared: Arc<Shared>, id: u64) -> Self {
        let state = Arc::new(ConnState::new(id));
        shared.conns().insert(id, state.clone());
        Registered { shared, state }
    }

    pub(crate) fn state(&self) -> &ConnState {
        &self.state
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.conns().remove(&self.state.id);
    }
}

/// A running proxy. Dropping it stops the listener and closes all its connections.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Dropping or firing this stops the accept loop, which then closes every connection.
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Listens on an ephemeral loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Proxy> {
        Proxy::start_with(upstream, ProxyOptions::default()).await
    }

    pub async fn start_with(upstream: SocketAddr, opts: ProxyOptions) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the fault proxy to a loopback port")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            rules: watch::Sender::new(Arc::new(RuleSet::default())),
            stats: Mutex::default(),
            next_rule: AtomicU64::new(1),
            conns: Mutex::default(),
            seed: opts.seed.unwrap_or_else(rand::random),
            budget_bytes: opts.buffer_bytes.max(1),
            mock_responses: opts.mock_responses,
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        debug!(proxy = %addr, %upstream, "fault proxy listening");
        Ok(Proxy {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// Where clients connect (what the broker should advertise).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Installs a rule; it applies at once to existing and new connections.
    ///
    /// # Panics
    /// If the rule fails [`Rule::validate`] (a programming error: validate user input
    /// first).
    pub fn add_rule(&self, rule: Rule) -> RuleId {
        if let Err(e) = rule.validate() {
            panic!("invalid fault proxy rule {rule:?}: {e}");
        }
        let id = RuleId(self.shared.next_rule.fetch_add(1, Ordering::Relaxed));
        let counters = Arc::new(Counters::default());
        self.shared.stats().insert(id, counters.clone());
        debug!(proxy = %self.addr, %id, ?rule, "rule added");
        // Existing connections a reset targets are condemned here and now, not when
        // they next look at the rules: a reset removed right away still happened. The
        // rule is published first, so a connection that learns its client id during
        // this scan sees the rule when it judges that first request.
        let probe = rule.clone();
        self.shared
            .rules
            .send_modify(|set| Arc::make_mut(set).insert(id, rule, counters));
        for conn in self.shared.conns().values() {
            if probe.resets_connection(conn.client_id()) {
                conn.reset_by(id);
            }
        }
        id
    }

    /// Removes a rule; frames it holds are released. Returns whether it was installed.
    pub fn remove_rule(&self, id: RuleId) -> bool {
        let removed = self
            .shared
            .rules
            .send_if_modified(|set| set.contains(id) && Arc::make_mut(set).remove(id).is_some());
        debug!(proxy = %self.addr, %id, removed, "rule removed");
        removed
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let mut removed = 0;
        self.shared.rules.send_if_modified(|set| {
            removed = set.len();
            if removed > 0 {
                Arc::make_mut(set).clear();
            }
            removed > 0
        });
        debug!(proxy = %self.addr, removed, "rules cleared");
    }

    /// The rules in force, oldest first.
    pub fn rules(&self) -> Vec<(RuleId, Rule)> {
        self.shared.rules.borrow().list()
    }

    /// What a rule has done so far; still readable after the rule is removed. `None` for
    /// an id this proxy never issued.
    pub fn stats(&self, id: RuleId) -> Option<RuleStats> {
        self.shared.stats().get(&id).map(|c| c.snapshot())
    }

    /// Client connections currently open through the proxy.
    pub fn connections(&self) -> usize {
        self.shared.conns().len()
    }

    /// Stops the listener and returns once every connection is closed.
    pub async fn shutdown(self) {
        let Proxy { stop, task, .. } = self;
        let _ = stop.send(());
        if let Err(e) = task.await {
            warn!(error = %e, "fault proxy accept loop ended abnormally");
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut conns = JoinSet::new();
    let mut next_conn = 0u64;
    loop {
        tokio::select! {
            // Fires on `shutdown` and when the `Proxy` is dropped.
            _ = &mut stop => break,
            Some(joined) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = joined {
                    warn!(error = %e, "fault proxy connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    next_conn += 1;
                    debug!(conn = next_conn, %peer, "accepted");
                    let registered = Registered::new(shared.clone(), next_conn);
                    conns.spawn(conn::serve(shared.clone(), client, registered));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "fault proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    // Aborts every connection task and waits until each has dropped its sockets.
    conns.shutdown().await;
    debug!(upstream = %shared.upstream, "fault proxy stopped");
}
