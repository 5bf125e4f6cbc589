//! The fault proxy between a fake client and a fake broker. The broker reads Kafka-style
//! request frames and answers each with `correlation_id` + the request's payload, so
//! every byte that crosses the proxy can be checked on both sides.
//!
//! Tests wait for events under a generous deadline; only "this must not happen" checks
//! use a short bounded wait (`QUIET`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use harness::proxy::{
    api, parse_request_header, Action, Direction, Proxy, ProxyOptions, Rule, RuleId, RuleStats,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long anything that should happen may take (a loaded CI box is slow).
const DEADLINE: Duration = Duration::from_secs(20);
/// How long something that must not happen is given to show up anyway.
const QUIET: Duration = Duration::from_millis(300);

/// The fake broker answers this API with half a response, then hangs up.
const API_HANG_UP: i16 = 1000;
/// The fake broker writes its answer to this API one byte per write.
const API_DRIBBLE: i16 = 1001;

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?} waiting for {what}"))
}

/// Polls a condition on proxy state (counters have no change notification).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

async fn stats_reach(proxy: &Proxy, id: RuleId, what: &str, cond: impl Fn(&RuleStats) -> bool) {
    let reached = tokio::time::timeout(DEADLINE, async {
        while !cond(&proxy.stats(id).expect("issued rule")) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    if reached.is_err() {
        panic!(
            "timed out waiting for {what}: {id} has {:?}",
            proxy.stats(id)
        );
    }
}

fn request_frame(
    api_key: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(14 + payload.len());
    body.extend_from_slice(&api_key.to_be_bytes());
    body.extend_from_slice(&4i16.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    match client_id {
        Some(c) => {
            body.extend_from_slice(&(c.len() as i16).to_be_bytes());
            body.extend_from_slice(c.as_bytes());
        }
        None => body.extend_from_slice(&(-1i16).to_be_bytes()),
    }
    body.extend_from_slice(payload);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

fn response_frame(correlation_id: i32, payload: &[u8]) -> Vec<u8> {
    let mut frame = ((4 + payload.len()) as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A deterministic payload that differs at every offset, so a shifted or truncated
/// frame cannot compare equal.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8 ^ salt)
        .collect()
}

enum Read {
    Frame(Vec<u8>),
    Eof,
    MidFrame,
}

/// Reads one frame's body (size prefix stripped), telling a clean end from a torn one.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Read> {
    let mut size = [0u8; 4];
    if r.read(&mut size[..1]).await? == 0 {
        return Ok(Read::Eof);
    }
    if r.read_exact(&mut size[1..]).await.is_err() {
        return Ok(Read::MidFrame);
    }
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    match r.read_exact(&mut body).await {
        Ok(_) => Ok(Read::Frame(body)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Read::MidFrame),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Request {
        conn: u64,
        api_key: i16,
        correlation_id: i32,
        client_id: Option<String>,
        payload: Vec<u8>,
    },
    Closed {
        conn: u64,
        mid_frame: bool,
    },
}

/// The fake broker: logs every request and close, answers every request.
struct Broker {
    addr: SocketAddr,
    log: watch::Receiver<Vec<Event>>,
    task: JoinHandle<()>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Broker {
    async fn start() -> Broker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (log_tx, log) = watch::channel(Vec::new());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            for conn in 1u64.. {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                conns.spawn(serve_broker_conn(conn, stream, log_tx.clone()));
            }
        });
        Broker { addr, log, task }
    }

    async fn wait_for(&self, what: &str, mut pred: impl FnMut(&[Event]) -> bool) {
        let mut log = self.log.clone();
        within(what, log.wait_for(|events| pred(events)))
            .await
            .expect("broker log open");
    }

    /// Asserts that nothing matching `pred` shows up for `QUIET`.
    async fn stays_without(&self, what: &str, mut pred: impl FnMut(&[Event]) -> bool) {
        let mut log = self.log.clone();
        let seen = tokio::time::timeout(QUIET, log.wait_for(|events| pred(events))).await;
        assert!(seen.is_err(), "unexpected: {what}");
    }

    /// Correlation ids the broker received from `client_id`, in arrival order.
    fn received_from(&self, client_id: &str) -> Vec<i32> {
        received_from(&self.log.borrow(), client_id)
    }

    fn conn_of(&self, client_id: &str) -> u64 {
        self.log
            .borrow()
            .iter()
            .find_map(|e| match e {
                Event::Request {
                    conn,
                    client_id: Some(c),
                    ..
                } if c == client_id => Some(*conn),
                _ => None,
            })
            .expect("client has sent a request")
    }
}

fn received_from(events: &[Event], client_id: &str) -> Vec<i32> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Request {
                correlation_id,
                client_id: Some(c),
                ..
            } if c == client_id => Some(*correlation_id),
            _ => None,
        })
        .collect()
}

fn closed(events: &[Event], conn: u64) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::Closed { conn: c, .. } if *c == conn))
}

async fn serve_broker_conn(conn: u64, stream: TcpStream, log: watch::Sender<Vec<Event>>) {
    stream.set_nodelay(true).unwrap();
    let (rx, mut tx) = stream.into_split();
    let mut rx = BufReader::new(rx);
    let mut out = Vec::new();
    loop {
        let body = match read_frame(&mut rx).await {
            Ok(Read::Frame(body)) => body,
            Ok(Read::Eof) | Err(_) => {
                log.send_modify(|l| {
                    l.push(Event::Closed {
                        conn,
                        mid_frame: false,
                    })
                });
                return;
            }
            Ok(Read::MidFrame) => {
                log.send_modify(|l| {
                    l.push(Event::Closed {
                        conn,
                        mid_frame: true,
                    })
                });
                return;
            }
        };
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let header = parse_request_header(&frame).expect("a request header");
        let payload = body[10 + header.client_id.as_ref().map_or(0, |c| c.len())..].to_vec();
        let response = response_frame(header.correlation_id, &payload);
        log.send_modify(|l| {
            l.push(Event::Request {
                conn,
                api_key: header.api_key,
                correlation_id: header.correlation_id,
                client_id: header.client_id.clone(),
                payload,
            })
        });
        match header.api_key {
            API_HANG_UP => {
                let _ = tx.write_all(&response[..response.len() / 2]).await;
                log.send_modify(|l| {
                    l.push(Event::Closed {
                        conn,
                        mid_frame: false,
                    })
                });
                return;
            }
            API_DRIBBLE => {
                for b in response {
                    if tx.write_all(&[b]).await.is_err() {
                        return;
                    }
                }
            }
            _ => {
                // Answer everything that arrived together in one write: coalesced
                // responses for coalesced requests.
                out.extend_from_slice(&response);
                if rx.buffer().is_empty() {
                    if tx.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            }
        }
    }
}

/// The fake client: writes request frames, reads response frames.
struct Client {
    stream: TcpStream,
    client_id: String,
}

impl Client {
    async fn connect(proxy: &Proxy, client_id: &str) -> Client {
        let stream = within("connect", TcpStream::connect(proxy.addr()))
            .await
            .expect("proxy accepts");
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            client_id: client_id.to_string(),
        }
    }

    /// Asserts that the proxy turns a new connection away: the connect itself may
    /// already see the reset, or the first read does.
    async fn refused(proxy: &Proxy) {
        match within("connect", TcpStream::connect(proxy.addr())).await {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            Ok(stream) => {
                let mut c = Client {
                    stream,
                    client_id: "refused".into(),
                };
                assert!(c.closed().await.is_some(), "reset without sending anything");
            }
        }
    }

    fn frame(&self, api_key: i16, correlation_id: i32, payload: &[u8]) -> Vec<u8> {
        request_frame(api_key, correlation_id, Some(&self.client_id), payload)
    }

    async fn send(&mut self, api_key: i16, correlation_id: i32) {
        let frame = self.frame(api_key, correlation_id, &correlation_id.to_be_bytes());
        self.stream.write_all(&frame).await.expect("send");
    }

    /// The next response: (correlation id, payload).
    async fn recv(&mut self) -> (i32, Vec<u8>) {
        match within("a response", read_frame(&mut self.stream)).await {
            Ok(Read::Frame(body)) => {
                let corr = i32::from_be_bytes(body[..4].try_into().unwrap());
                (corr, body[4..].to_vec())
            }
            Ok(Read::Eof) => panic!("{}: connection closed, expected a response", self.client_id),
            Ok(Read::MidFrame) => panic!("{}: connection closed mid-response", self.client_id),
            Err(e) => panic!("{}: read failed: {e}", self.client_id),
        }
    }

    async fn round_trip(&mut self, api_key: i16, correlation_id: i32) {
        self.send(api_key, correlation_id).await;
        let (corr, payload) = self.recv().await;
        assert_eq!(corr, correlation_id);
        assert_eq!(payload, correlation_id.to_be_bytes());
    }

    /// Asserts that for `QUIET` nothing arrives and the connection is neither closed nor
    /// reset.
    async fn stays_silent(&mut self) {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(QUIET, self.stream.read(&mut byte)).await {
            Err(_) => {}
            Ok(Ok(0)) => panic!("{}: connection closed", self.client_id),
            Ok(Ok(_)) => panic!("{}: unexpected bytes", self.client_id),
            Ok(Err(e)) => panic!("{}: connection failed: {e}", self.client_id),
        }
    }

    /// Waits for the proxy to close this connection; returns the error kind if it was
    /// reset, `None` for an orderly close.
    async fn closed(&mut self) -> Option<io::ErrorKind> {
        let mut buf = [0u8; 1024];
        match within("the connection to close", self.stream.read(&mut buf)).await {
            Ok(0) => None,
            Ok(n) => panic!("{}: {n} bytes where a close was expected", self.client_id),
            Err(e) => Some(e.kind()),
        }
    }
}

async fn setup() -> (Broker, Proxy) {
    let broker = Broker::start().await;
    let proxy = Proxy::start_with(
        broker.addr,
        ProxyOptions {
            seed: Some(7),
            ..ProxyOptions::default()
        },
    )
    .await
    .unwrap();
    (broker, proxy)
}

// (a)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_many_frames_both_ways() {
    let (broker, proxy) = setup().await;
    assert!(proxy.addr().ip().is_loopback());
    let mut clients = Vec::new();
    for c in 0..3 {
        let proxy_addr = proxy.addr();
        clients.push(tokio::spawn(async move {
            let stream = TcpStream::connect(proxy_addr).await.unwrap();
            let id = format!("pass-{c}");
            let mut client = Client {
                stream,
                client_id: id,
            };
            // Pipelined: all requests out before reading any response.
            for corr in 0..200 {
                let payload = pattern(corr as usize * 7, c);
                let frame = client.frame(corr as i16 % 20, corr, &payload);
                client.stream.write_all(&frame).await.unwrap();
            }
            for corr in 0..200 {
                let (got, payload) = client.recv().await;
                assert_eq!(got, corr);
                assert_eq!(payload, pattern(corr as usize * 7, c));
            }
        }));
    }
    for c in clients {
        within("clients", c).await.unwrap();
    }
    for c in 0..3u8 {
        assert_eq!(
            broker.received_from(&format!("pass-{c}")),
            (0..200).collect::<Vec<_>>()
        );
    }
    let payloads_ok = broker.log.borrow().iter().all(|e| match e {
        Event::Request {
            correlation_id,
            client_id: Some(id),
            payload,
            ..
        } => {
            let salt = id.strip_prefix("pass-").unwrap().parse::<u8>().unwrap();
            *payload == pattern(*correlation_id as usize * 7, salt)
        }
        _ => true,
    });
    assert!(payloads_ok, "every request payload arrives intact");
}

// (b)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassembles_split_and_coalesced_frames() {
    let (broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "split").await;

    // One byte per write, both ways (the broker dribbles its answer to API_DRIBBLE).
    for corr in 0..3 {
        let frame = client.frame(API_DRIBBLE, corr, &pattern(300, 1));
        for b in &frame {
            client.stream.write_all(&[*b]).await.unwrap();
        }
        let (got, payload) = client.recv().await;
        assert_eq!((got, payload), (corr, pattern(300, 1)));
    }

    // Fifty frames in one write; the broker answers them in one write too.
    let batch: Vec<u8> = (3..53)
        .flat_map(|corr| client.frame(api::FETCH, corr, &pattern(corr as usize, 2)))
        .collect();
    client.stream.write_all(&batch).await.unwrap();
    for corr in 3..53 {
        let (got, payload) = client.recv().await;
        assert_eq!((got, payload), (corr, pattern(corr as usize, 2)));
    }
    // One and a half frames, then the rest.
    let two: Vec<u8> = [client.frame(1, 53, b"x"), client.frame(1, 54, b"y")].concat();
    let cut = two.len() - 5;
    client.stream.write_all(&two[..cut]).await.unwrap();
    assert_eq!(client.recv().await, (53, b"x".to_vec()));
    client.stream.write_all(&two[cut..]).await.unwrap();
    assert_eq!(client.recv().await, (54, b"y".to_vec()));
    assert_eq!(broker.received_from("split"), (0..55).collect::<Vec<_>>());
}

// (c)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frame_passes_intact() {
    let (broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "large").await;
    let big = pattern(16 << 20, 3);
    let frame = client.frame(api::PRODUCE, 1, &big);
    let (write, ()) = tokio::join!(client.stream.write_all(&frame), async {
        // Read the response while writing: the echo is as large as the request.
        broker
            .wait_for("the large request", |e| received_from(e, "large") == [1])
            .await;
    });
    write.unwrap();
    let received = broker.log.borrow().iter().find_map(|e| match e {
        Event::Request { payload, .. } => Some(payload.clone()),
        _ => None,
    });
    assert!(received.as_ref() == Some(&big), "request arrives intact");
    let (corr, payload) = client.recv().await;
    assert_eq!(corr, 1);
    assert_eq!(payload.len(), big.len());
    assert!(payload == big, "response arrives intact");
    client.round_trip(api::METADATA, 2).await;
}

// (d) client side
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_hanging_up_mid_frame_closes_upstream() {
    let (broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "torn").await;
    client.round_trip(api::METADATA, 1).await;
    let conn = broker.conn_of("torn");
    let frame = client.frame(api::FETCH, 2, &pattern(1000, 4));
    client
        .stream
        .write_all(&frame[..frame.len() / 2])
        .await
        .unwrap();
    drop(client);

    broker
        .wait_for("the upstream connection to close", |e| closed(e, conn))
        .await;
    assert_eq!(
        broker.received_from("torn"),
        [1],
        "the torn frame is not forwarded"
    );
    eventually("the proxy to forget the connection", || {
        proxy.connections() == 0
    })
    .await;

    let mut next = Client::connect(&proxy, "after").await;
    next.round_trip(api::METADATA, 1).await;
}

// (d) broker side
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_hanging_up_mid_frame_closes_client() {
    let (broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "victim").await;
    client.round_trip(api::METADATA, 1).await;
    client.send(API_HANG_UP, 2).await;
    assert_eq!(
        client.closed().await,
        None,
        "an orderly close, no partial frame"
    );
    assert_eq!(broker.received_from("victim"), [1, 2]);
    eventually("the proxy to forget the connection", || {
        proxy.connections() == 0
    })
    .await;

    let mut next = Client::connect(&proxy, "after").await;
    next.round_trip(api::METADATA, 1).await;
}

// (e)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_holds_bytes_then_delivers_them_in_order() {
    let (broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "held").await;
    client.round_trip(api::METADATA, 1).await;

    let rule = proxy.add_rule(Rule::blackhole());
    for corr in 2..7 {
        client.send(api::HEARTBEAT, corr).await;
    }
    // A connection opened during the partition is held as well.
    let mut late = Client::connect(&proxy, "late").await;
    late.send(api::METADATA, 100).await;
    stats_reach(&proxy, rule, "six frames held", |s| s.frames_held == 6).await;
    broker
        .stays_without("bytes reaching the broker during the partition", |e| {
            received_from(e, "held").len() > 1 || !received_from(e, "late").is_empty()
        })
        .await;
    client.stays_silent().await;
    assert_eq!(proxy.connections(), 2, "the partition closes nothing");

    assert!(proxy.remove_rule(rule));
    for corr in 2..7 {
        assert_eq!(client.recv().await.0, corr);
    }
    assert_eq!(late.recv().await.0, 100);
    assert_eq!(broker.received_from("held"), (1..7).collect::<Vec<_>>());
    let stats = proxy.stats(rule).unwrap();
    assert_eq!((stats.frames_held, stats.frames_matched), (6, 6));
    let one = request_frame(api::HEARTBEAT, 2, Some("held"), &2i32.to_be_bytes()).len() as u64;
    let late_len = request_frame(api::METADATA, 100, Some("late"), &100i32.to_be_bytes()).len();
    assert_eq!(stats.bytes_held, 5 * one + late_len as u64);
    assert!(!proxy.remove_rule(rule), "already removed");
}

// (e) responses only
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_to_client_holds_responses_only() {
    let (broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "c").await;
    client.round_trip(api::METADATA, 1).await;
    let rule = proxy.add_rule(Rule::blackhole().direction(Direction::ToClient));
    client.send(api::HEARTBEAT, 2).await;
    client.send(api::HEARTBEAT, 3).await;
    broker
        .wait_for("requests still reaching the broker", |e| {
            received_from(e, "c") == [1, 2, 3]
        })
        .await;
    stats_reach(&proxy, rule, "two responses held", |s| s.frames_held == 2).await;
    client.stays_silent().await;
    proxy.clear();
    assert_eq!(client.recv().await.0, 2);
    assert_eq!(client.recv().await.0, 3);
}

// (e) one API: documented to let other APIs overtake the held frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_of_one_api_lets_others_overtake() {
    let (broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "c").await;
    let rule = proxy.add_rule(Rule::blackhole().api_key(api::HEARTBEAT));
    client.send(api::HEARTBEAT, 1).await;
    client.send(api::METADATA, 2).await;
    client.send(api::HEARTBEAT, 3).await;
    client.send(api::OFFSET_COMMIT, 4).await;
    assert_eq!(client.recv().await.0, 2);
    assert_eq!(client.recv().await.0, 4);
    assert_eq!(broker.received_from("c"), [2, 4]);
    stats_reach(&proxy, rule, "two heartbeats held", |s| s.frames_held == 2).await;
    proxy.remove_rule(rule);
    assert_eq!(client.recv().await.0, 1);
    assert_eq!(client.recv().await.0, 3);
    assert_eq!(broker.received_from("c"), [2, 4, 1, 3]);
}

// (e') a stall: from the first heartbeat on, everything behind it waits, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_holds_everything_behind_its_first_frame_in_order() {
    let (broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "c").await;
    let rule = proxy.add_rule(Rule::stall_from(api::HEARTBEAT));
    client.send(api::METADATA, 1).await;
    assert_eq!(
        client.recv().await.0,
        1,
        "before the first heartbeat, frames pass"
    );
    client.send(api::HEARTBEAT, 2).await;
    client.send(api::METADATA, 3).await;
    client.send(api::OFFSET_COMMIT, 4).await;
    stats_reach(&proxy, rule, "three frames held", |s| s.frames_held == 3).await;
    assert_eq!(broker.received_from("c"), [1]);
    proxy.remove_rule(rule);
    for corr in 2..=4 {
        assert_eq!(client.recv().await.0, corr, "delivered in order on heal");
    }
    assert_eq!(broker.received_from("c"), [1, 2, 3, 4]);
    client.round_trip(api::HEARTBEAT, 5).await;
}

// (f)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_closes_matching_connections_old_and_new() {
    let (broker, proxy) = setup().await;
    let mut victim = Client::connect(&proxy, "victim").await;
    let mut bystander = Client::connect(&proxy, "bystander").await;
    victim.round_trip(api::METADATA, 1).await;
    bystander.round_trip(api::METADATA, 1).await;

    let rule = proxy.add_rule(Rule::reset().client_id("victim"));
    assert_eq!(victim.closed().await, Some(io::ErrorKind::ConnectionReset));
    bystander.round_trip(api::HEARTBEAT, 2).await;

    // A new connection is accepted, then closed at its first request, which the broker
    // never sees.
    let mut again = Client::connect(&proxy, "victim").await;
    again.send(api::METADATA, 2).await;
    assert!(again.closed().await.is_some(), "reset on its first request");
    let mut other = Client::connect(&proxy, "other").await;
    other.round_trip(api::METADATA, 1).await;
    assert_eq!(broker.received_from("victim"), [1]);
    stats_reach(&proxy, rule, "two resets", |s| s.connections_reset == 2).await;

    // A reset without a client id refuses new connections outright.
    let all = proxy.add_rule(Rule::reset());
    assert_eq!(
        bystander.closed().await,
        Some(io::ErrorKind::ConnectionReset)
    );
    Client::refused(&proxy).await;
    proxy.remove_rule(all);
    proxy.remove_rule(rule);
    // Removed at once, yet every connection open when it was added has been reset.
    assert_eq!(other.closed().await, Some(io::ErrorKind::ConnectionReset));
    let mut healed = Client::connect(&proxy, "victim").await;
    healed.round_trip(api::METADATA, 3).await;
    assert_eq!(broker.received_from("victim"), [1, 3]);
    // bystander, other (still open when the rule came) and refused.
    stats_reach(&proxy, all, "three resets", |s| s.connections_reset == 3).await;
}

// (f) one API
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_on_api_fires_when_that_api_is_sent() {
    let (broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "c").await;
    let rule = proxy.add_rule(Rule::reset().api_key(api::JOIN_GROUP));
    client.round_trip(api::METADATA, 1).await;
    client.send(api::JOIN_GROUP, 2).await;
    assert_eq!(client.closed().await, Some(io::ErrorKind::ConnectionReset));
    assert_eq!(broker.received_from("c"), [1]);
    assert_eq!(proxy.stats(rule).unwrap().connections_reset, 1);
}

// (g)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_at_least_ms_and_keeps_order() {
    let (_broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "slow").await;
    client.round_trip(api::METADATA, 0).await;

    let rule = proxy.add_rule(Rule::latency(200, 0).direction(Direction::ToBroker));
    let start = Instant::now();
    client.round_trip(api::METADATA, 1).await;
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    proxy.remove_rule(rule);

    // Responses of one API only, with jitter: never earlier than ms - jitter.
    let rule = proxy.add_rule(
        Rule::latency(150, 50)
            .api_key(api::FETCH)
            .direction(Direction::ToClient),
    );
    let start = Instant::now();
    client.round_trip(api::FETCH, 2).await;
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(proxy.stats(rule).unwrap().frames_delayed, 1);
    proxy.remove_rule(rule);

    // Jitter larger than the gaps between frames still cannot reorder them.
    proxy.add_rule(Rule::latency(20, 20));
    for corr in 3..43 {
        client.send(api::FETCH, corr).await;
    }
    for corr in 3..43 {
        assert_eq!(client.recv().await.0, corr);
    }
}

// (h)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_api_discards_only_that_api() {
    let (broker, proxy) = setup().await;
    let mut client = Client::connect(&proxy, "c").await;
    let rule = proxy.add_rule(Rule::drop_api(api::HEARTBEAT));
    client.send(api::HEARTBEAT, 1).await;
    client.send(api::METADATA, 2).await;
    client.send(api::HEARTBEAT, 3).await;
    client.send(api::JOIN_GROUP, 4).await;
    assert_eq!(client.recv().await.0, 2);
    assert_eq!(client.recv().await.0, 4);
    // The broker gets frames in order, so with 4 in, 1 and 3 are gone for good.
    assert_eq!(broker.received_from("c"), [2, 4]);
    let stats = proxy.stats(rule).unwrap();
    assert_eq!(stats.frames_dropped, 2);
    assert_eq!(
        stats.bytes_dropped,
        2 * client.frame(api::HEARTBEAT, 1, &[0; 4]).len() as u64
    );
    proxy.remove_rule(rule);
    client.round_trip(api::HEARTBEAT, 5).await;

    // Responses: the broker sees the request, the client never gets the answer. The
    // response is recognised through the correlation id of its request.
    proxy.add_rule(
        Rule::new(Action::DropApi)
            .api_key(api::METADATA)
            .direction(Direction::ToClient),
    );
    client.send(api::METADATA, 6).await;
    client.send(api::FETCH, 7).await;
    assert_eq!(client.recv().await.0, 7);
    assert_eq!(broker.received_from("c"), [2, 4, 5, 6, 7]);
}

// (i)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_id_targets_one_client_only() {
    let (broker, proxy) = setup().await;
    let mut a = Client::connect(&proxy, "a").await;
    let mut b = Client::connect(&proxy, "b").await;
    a.round_trip(api::METADATA, 1).await;
    b.round_trip(api::METADATA, 1).await;

    let hole = proxy.add_rule(Rule::blackhole().client_id("a"));
    let dropper = proxy.add_rule(Rule::drop_api(api::HEARTBEAT).client_id("b"));
    a.send(api::METADATA, 2).await;
    b.round_trip(api::METADATA, 2).await;
    b.send(api::HEARTBEAT, 3).await;
    b.round_trip(api::METADATA, 4).await;
    stats_reach(&proxy, hole, "a's request held", |s| s.frames_held == 1).await;
    assert_eq!(broker.received_from("a"), [1]);
    assert_eq!(broker.received_from("b"), [1, 2, 4]);
    a.stays_silent().await;

    // a's heartbeats are not dropped: they are held, then delivered.
    a.send(api::HEARTBEAT, 3).await;
    proxy.remove_rule(hole);
    assert_eq!(a.recv().await.0, 2);
    assert_eq!(a.recv().await.0, 3);
    assert_eq!(broker.received_from("a"), [1, 2, 3]);
    assert_eq!(proxy.stats(dropper).unwrap().frames_dropped, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_and_drop_close_every_connection() {
    let (broker, proxy) = setup().await;
    let mut a = Client::connect(&proxy, "a").await;
    a.round_trip(api::METADATA, 1).await;
    let mut held = Client::connect(&proxy, "held").await;
    held.round_trip(api::METADATA, 1).await;
    let rule = proxy.add_rule(Rule::blackhole().client_id("held"));
    held.send(api::METADATA, 2).await;
    stats_reach(&proxy, rule, "a held frame", |s| s.frames_held == 1).await;
    let conn = broker.conn_of("a");
    let addr = proxy.addr();
    proxy.shutdown().await;
    assert_eq!(a.closed().await, None);
    assert_eq!(held.closed().await, None);
    broker
        .wait_for("upstream connection closed", |e| closed(e, conn))
        .await;
    assert!(TcpStream::connect(addr).await.is_err(), "listener is gone");

    let proxy = Proxy::start(broker.addr).await.unwrap();
    let mut c = Client::connect(&proxy, "c").await;
    c.round_trip(api::METADATA, 1).await;
    drop(proxy);
    assert_eq!(c.closed().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_closes_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let proxy = Proxy::start(dead).await.unwrap();
    Client::refused(&proxy).await;
}

#[test]
#[should_panic(expected = "needs an api_key")]
fn drop_api_without_api_key_is_rejected() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let proxy = Proxy::start("127.0.0.1:9".parse().unwrap()).await.unwrap();
        proxy.add_rule(Rule::new(Action::DropApi));
    });
}
