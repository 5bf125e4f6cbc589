//! One proxied connection: client socket, its own upstream socket, two pumps, and a
//! watch for reset rules. Everything runs inside one task, so dropping that task (proxy
//! shutdown) drops both sockets at once and leaves nothing behind.

use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tracing::debug;

use super::frame::InFlight;
use super::pump::{is_disconnect, Pump};
use super::rules::{ClientId, Direction, RuleId};
use super::{Registered, Shared};

/// How long to wait for the broker to accept the upstream connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Read buffer per direction: several small frames in one segment cost one syscall;
/// reads bigger than this bypass it.
const READ_BUF: usize = 64 * 1024;

/// Why a connection ended early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A reset rule fired: both sockets are closed with RST.
    Reset(RuleId),
    /// The peer feeding this direction closed in the middle of a frame.
    PeerGone(Direction),
    /// Reading from the source, or writing to the destination, of this direction failed.
    Io(Direction, io::Error),
    Shutdown,
}

/// What the pumps of one connection, and the proxy's registry of connections, share.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    pub id: u64,
    client_id: OnceLock<Option<String>>,
    in_flight: Mutex<InFlight>,
    /// The reset rule that condemned this connection, set at most once.
    reset: OnceLock<RuleId>,
    reset_signal: Notify,
}

impl ConnState {
    pub(crate) fn new(id: u64) -> Self {
        ConnState {
            id,
            ..Default::default()
        }
    }

    /// Condemns the connection; its task closes it at once. Called by `add_rule` itself,
    /// so a reset rule removed right after being added still resets every connection
    /// it matched.
    pub(crate) fn reset_by(&self, rule: RuleId) {
        if self.reset.set(rule).is_ok() {
            // A stored permit: the task sees it even if it is not waiting yet.
            self.reset_signal.notify_one();
        }
    }

    async fn reset_requested(&self) -> RuleId {
        loop {
            if let Some(rule) = self.reset.get() {
                return *rule;
            }
            self.reset_signal.notified().await;
        }
    }

    /// Remembers the client id of the first request; later requests cannot change it.
    pub(crate) fn learn_client_id(&self, client_id: Option<String>) {
        if self.client_id.get().is_none() {
            let _ = self.client_id.set(client_id);
        }
    }

    pub(crate) fn client_id(&self) -> ClientId<'_> {
        match self.client_id.get() {
            None => ClientId::Unknown,
            Some(c) => ClientId::Known(c.as_deref()),
        }
    }

    pub(crate) fn sent(&self, correlation_id: i32, api_key: i16, api_version: i16) {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sent(correlation_id, api_key, api_version);
    }

    pub(crate) fn answered(&self, correlation_id: i32) -> Option<(i16, i16)> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .answered(correlation_id)
    }
}

/// Serves one accepted client connection until it ends. `registered` keeps it in the
/// proxy's registry (where `add_rule` finds it) for exactly as long as it lives.
pub(crate) async fn serve(shared: Arc<Shared>, mut client: TcpStream, registered: Registered) {
    let state = registered.state();
    let id = state.id;
    // A reset rule that needs no client id refuses the connection before the broker
    // ever sees it. Registered first, then checked: a rule added meanwhile is seen by
    // this check or finds the connection in the registry.
    let refused = shared.rules.borrow().resets_connection(ClientId::Unknown);
    if let Some(rule) = refused {
        debug!(conn = id, %rule, "new connection refused by reset rule");
        shared.count_reset(rule);
        abort(&client);
        return;
    }
    let mut upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(shared.upstream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                debug!(conn = id, error = %e, "upstream refused, closing client");
                abort(&client);
                return;
            }
            Err(_) => {
                debug!(conn = id, "upstream connect timed out, closing client");
                abort(&client);
                return;
            }
        };
    // Kafka clients and brokers disable Nagle; a proxy that re-enabled it would add
    // latency nobody asked for.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let outcome = relay(&shared, state, &mut client, &mut upstream).await;
    match outcome {
        Ok(()) => debug!(conn = id, "closed by both peers"),
        Err(Stop::Reset(rule)) => {
            debug!(conn = id, %rule, client_id = ?state.client_id(), "reset by rule");
            shared.count_reset(rule);
            abort(&client);
            abort(&upstream);
        }
        Err(Stop::PeerGone(direction)) => {
            debug!(
                conn = id,
                ?direction,
                "source closed mid-frame, closing both sides"
            )
        }
        Err(Stop::Io(direction, e)) if is_disconnect(&e) => {
            debug!(conn = id, ?direction, error = %e, "peer disconnected")
        }
        Err(Stop::Io(direction, e)) => {
            debug!(conn = id, ?direction, error = %e, "i/o error, closing both sides")
        }
        Err(Stop::Shutdown) => debug!(conn = id, "proxy shut down"),
    }
    // Dropping the sockets here closes both sides (FIN, or RST after `abort`).
}

/// Pumps both directions until both are done, or until one must stop the connection.
async fn relay(
    shared: &Shared,
    state: &ConnState,
    client: &mut TcpStream,
    upstream: &mut TcpStream,
) -> Result<(), Stop> {
    let (client_rx, client_tx) = client.split();
    let (upstream_rx, upstream_tx) = upstream.split();
    let pump = |direction: Direction| Pump {
        direction,
        conn: state,
        rules: shared.rules.subscribe(),
        // Per connection and direction, so a seeded proxy draws the same jitter
        // sequence for the same traffic.
        rng: StdRng::seed_from_u64(
            shared.seed ^ state.id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ direction as u64,
        ),
        budget_bytes: shared.budget_bytes,
        mock_responses: shared.mock_responses,
    };
    let to_broker =
        pump(Direction::ToBroker).run(BufReader::with_capacity(READ_BUF, client_rx), upstream_tx);
    let to_client =
        pump(Direction::ToClient).run(BufReader::with_capacity(READ_BUF, upstream_rx), client_tx);
    tokio::select! {
        done = async { tokio::try_join!(to_broker, to_client) } => done.map(|_| ()),
        // Reset rules added while the connection lives. One that was there before its
        // client id became known fires in the pumps, at the first request.
        rule = state.reset_requested() => Err(Stop::Reset(rule)),
    }
}

/// Makes the coming drop of `s` send RST instead of FIN: what a reset looks like to the
/// peer. Zero linger never blocks.
fn abort(s: &TcpStream) {
    let _ = s.set_zero_linger();
}
