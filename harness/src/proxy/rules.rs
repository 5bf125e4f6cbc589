//! Fault rules: what a rule matches, what it does, and which rule wins when several
//! match the same frame.
//!
//! Precedence, most destructive first: `Reset` > `DropApi` > `Blackhole` > `Latency`.
//! A frame that a blackhole holds is judged again whenever the rule set changes, so a
//! drop rule still active when the blackhole heals drops it then. Latency rules add up
//! (each is one more slow link on the path), each with its own jitter draw.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which way a frame travels, or which way(s) a rule acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Both,
    /// Requests, client -> broker.
    ToBroker,
    /// Responses, broker -> client.
    ToClient,
}

impl Direction {
    /// Whether a rule with this direction covers a frame travelling `frame`.
    fn covers(self, frame: Direction) -> bool {
        self == Direction::Both || self == frame
    }
}

/// Which frames (and connections) a rule targets. Every `Some` narrows the match.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Match {
    /// Exact client id, as sent in the connection's first request header. A connection
    /// whose first request has not arrived yet, or that sent a null client id, never
    /// matches a rule that names a client id.
    pub client_id: Option<String>,
    /// Request API key; responses match through the API of the request they answer.
    pub api_key: Option<i16>,
    pub direction: Direction,
    /// Only SyncGroup requests that carry assignments: the group leader's.
    pub leader_sync: bool,
}

/// What happens to what a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    /// A network partition: matched frames are held, the connection stays open, and the
    /// held frames are delivered in order when the rule is removed. With an `api_key`,
    /// only that API's frames are held and the others overtake them: see the module docs
    /// of `proxy` for what that reordering means to clients.
    Blackhole,
    /// Without an `api_key`: close matching connections at once (RST) and close new
    /// ones as soon as they match (direction is ignored). With an `api_key`: reset a
    /// connection when a frame of that API travels in the matched direction.
    Reset,
    /// Delay each matched frame by `ms` ± a uniform draw in `[-jitter_ms, jitter_ms]`
    /// (never below zero), keeping the order of frames within a connection.
    Latency { ms: u64, jitter_ms: u64 },
    /// Silently discard matched frames (an `api_key` is required): requests never reach
    /// the broker, responses never reach the client. No real network does this inside a
    /// TCP stream, and clients that match responses to requests by order (the Java
    /// client, Sarama, aiokafka) break on it; prefer `Stall`.
    DropApi,
    /// A path that stalls when a matched frame is sent: from that frame on, every frame
    /// of the connection in that direction is held, in order, until the rule is removed,
    /// then delivered. The stream stays intact, as TCP keeps it.
    Stall,
}

/// One fault: a match and an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub matcher: Match,
    pub action: Action,
}

/// Why a rule cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("a drop_api rule needs an api_key")]
    DropApiWithoutApiKey,
}

impl Rule {
    /// Whether this is a connection-wide reset (no `api_key`) aimed at this client.
    pub(crate) fn resets_connection(&self, client: ClientId<'_>) -> bool {
        self.action == Action::Reset
            && self.matcher.api_key.is_none()
            && self.matcher.matches_client(client)
    }

    /// A rule matching everything in both directions.
    pub fn new(action: Action) -> Self {
        Rule {
            matcher: Match::default(),
            action,
        }
    }

    pub fn blackhole() -> Self {
        Rule::new(Action::Blackhole)
    }

    pub fn reset() -> Self {
        Rule::new(Action::Reset)
    }

    pub fn latency(ms: u64, jitter_ms: u64) -> Self {
        Rule::new(Action::Latency { ms, jitter_ms })
    }

    /// Drops requests of `api_key` (add `.direction(Direction::ToClient)` to drop its
    /// responses instead).
    pub fn drop_api(api_key: i16) -> Self {
        Rule::new(Action::DropApi)
            .api_key(api_key)
            .direction(Direction::ToBroker)
    }

    /// Stalls a connection's requests from its first request of `api_key` on.
    pub fn stall_from(api_key: i16) -> Self {
        Rule::new(Action::Stall)
            .api_key(api_key)
            .direction(Direction::ToBroker)
    }

    /// Narrows the rule to SyncGroup requests that carry the leader's assignments.
    pub fn leader_sync(mut self) -> Self {
        self.matcher.leader_sync = true;
        self
    }

    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.matcher.client_id = Some(client_id.into());
        self
    }

    pub fn api_key(mut self, api_key: i16) -> Self {
        self.matcher.api_key = Some(api_key);
        self
    }

    pub fn direction(mut self, direction: Direction) -> Self {
        self.matcher.direction = direction;
        self
    }

    /// Checks what the types cannot: `Proxy::add_rule` panics on a rule that fails this,
    /// so loaders of user input should call it first.
    pub fn validate(&self) -> Result<(), RuleError> {
        match (self.action, self.matcher.api_key) {
            (Action::DropApi, None) => Err(RuleError::DropApiWithoutApiKey),
            _ => Ok(()),
        }
    }
}

/// Identifies an installed rule; never reused within one proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleId(pub u64);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule#{}", self.0)
    }
}

/// What a rule has done so far. Byte counts are whole frames, size prefix included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// Frames this rule acted on (held, dropped or delayed by it).
    pub frames_matched: u64,
    pub frames_held: u64,
    pub bytes_held: u64,
    pub frames_dropped: u64,
    pub bytes_dropped: u64,
    pub frames_delayed: u64,
    /// Connections this rule closed (including new connections refused).
    pub connections_reset: u64,
}

/// Live counters behind `RuleStats`, shared by every connection's pumps.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    frames_matched: AtomicU64,
    frames_held: AtomicU64,
    bytes_held: AtomicU64,
    frames_dropped: AtomicU64,
    bytes_dropped: AtomicU64,
    frames_delayed: AtomicU64,
    connections_reset: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> RuleStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RuleStats {
            frames_matched: get(&self.frames_matched),
            frames_held: get(&self.frames_held),
            bytes_held: get(&self.bytes_held),
            frames_dropped: get(&self.frames_dropped),
            bytes_dropped: get(&self.bytes_dropped),
            frames_delayed: get(&self.frames_delayed),
            connections_reset: get(&self.connections_reset),
        }
    }

    pub(crate) fn count_reset(&self) {
        bump(&self.connections_reset, 1);
    }
}

/// A connection's client id as far as the proxy knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientId<'a> {
    /// No request has arrived yet.
    Unknown,
    /// From the first request; `None` for a null client id.
    Known(Option<&'a str>),
}

/// The facts about one frame that rules match on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameInfo<'a> {
    pub client: ClientId<'a>,
    pub direction: Direction,
    pub api_key: Option<i16>,
    pub len: usize,
    /// A SyncGroup request carrying assignments.
    pub leader_sync: bool,
}

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Delay(Duration),
    Hold(RuleId),
    Drop,
    Reset(RuleId),
}

impl Match {
    fn matches_client(&self, client: ClientId<'_>) -> bool {
        match (&self.client_id, client) {
            (None, _) => true,
            (Some(want), ClientId::Known(Some(got))) => want == got,
            (Some(_), _) => false,
        }
    }

    fn matches_frame(&self, f: &FrameInfo<'_>) -> bool {
        self.matches_client(f.client)
            && self.direction.covers(f.direction)
            && self.api_key.is_none_or(|k| f.api_key == Some(k))
            && (!self.leader_sync || f.leader_sync)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    id: RuleId,
    rule: Rule,
    counters: Arc<Counters>,
}

impl Entry {
    /// A reset without an API key targets whole connections; with one, single frames.
    fn resets_frame(&self, f: &FrameInfo<'_>) -> bool {
        self.rule.action == Action::Reset
            && match self.rule.matcher.api_key {
                None => self.rule.matcher.matches_client(f.client),
                Some(_) => self.rule.matcher.matches_frame(f),
            }
    }
}

/// The rules in force, in the order they were added (first added wins a tie).
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleSet {
    entries: Vec<Entry>,
}

impl RuleSet {
    pub(crate) fn insert(&mut self, id: RuleId, rule: Rule, counters: Arc<Counters>) {
        self.entries.push(Entry { id, rule, counters });
    }

    pub(crate) fn remove(&mut self, id: RuleId) -> Option<Rule> {
        let pos = self.entries.iter().position(|e| e.id == id)?;
        Some(self.entries.remove(pos).rule)
    }

    pub(crate) fn contains(&self, id: RuleId) -> bool {
        self.entries.iter().any(|e| e.id == id)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn list(&self) -> Vec<(RuleId, Rule)> {
        self.entries
            .iter()
            .map(|e| (e.id, e.rule.clone()))
            .collect()
    }

    /// The first connection-wide reset rule that targets a connection with this client.
    pub(crate) fn resets_connection(&self, client: ClientId<'_>) -> Option<RuleId> {
        self.entries
            .iter()
            .find(|e| e.rule.resets_connection(client))
            .map(|e| e.id)
    }

    /// Decides a frame's fate and counts it on the deciding rule(s). `held_by` is the rule
    /// holding the frame if it is being judged again, so a hold is counted once.
    pub(crate) fn judge(
        &self,
        f: &FrameInfo<'_>,
        held_by: Option<RuleId>,
        rng: &mut impl Rng,
    ) -> Verdict {
        let bytes = f.len as u64;
        if let Some(e) = self.entries.iter().find(|e| e.resets_frame(f)) {
            return Verdict::Reset(e.id);
        }
        let active = |action: fn(&Action) -> bool| {
            self.entries
                .iter()
                .filter(move |e| action(&e.rule.action) && e.rule.matcher.matches_frame(f))
        };
        if let Some(e) = active(|a| *a == Action::DropApi).next() {
            bump(&e.counters.frames_matched, 1);
            bump(&e.counters.frames_dropped, 1);
            bump(&e.counters.bytes_dropped, bytes);
            return Verdict::Drop;
        }
        let holds = |a: &Action| matches!(a, Action::Blackhole | Action::Stall);
        let mut holders = active(holds);
        let holder = match held_by {
            // Stay with the current holder while it still holds, so stats stay put.
            Some(id) => active(holds)
                .find(|e| e.id == id)
                .or_else(|| holders.next()),
            None => holders.next(),
        };
        if let Some(e) = holder {
            if held_by != Some(e.id) {
                bump(&e.counters.frames_matched, 1);
                bump(&e.counters.frames_held, 1);
                bump(&e.counters.bytes_held, bytes);
            }
            return Verdict::Hold(e.id);
        }
        let mut delay = None;
        for e in active(|a| matches!(a, Action::Latency { .. })) {
            let Action::Latency { ms, jitter_ms } = e.rule.action else {
                continue;
            };
            let ms = ms as i128 + rng.gen_range(-(jitter_ms as i128)..=jitter_ms as i128);
            let d = Duration::from_millis(ms.clamp(0, u64::MAX as i128) as u64);
            delay = Some(delay.unwrap_or(Duration::ZERO).saturating_add(d));
            bump(&e.counters.frames_matched, 1);
            bump(&e.counters.frames_delayed, 1);
        }
        delay.map_or(Verdict::Pass, Verdict::Delay)
    }
}

impl RuleSet {
    /// Whether `id` is a stall rule still in force: the frames behind the one it holds
    /// are held too.
    pub(crate) fn stalls(&self, id: RuleId) -> bool {
        self.entries
            .iter()
            .any(|e| e.id == id && e.rule.action == Action::Stall)
    }

    /// Holds a frame behind a stalled one, counted on the stall rule.
    pub(crate) fn hold_behind(&self, id: RuleId, f: &FrameInfo<'_>, already: bool) -> Verdict {
        if let Some(e) = self.entries.iter().find(|e| e.id == id) {
            if !already {
                bump(&e.counters.frames_matched, 1);
                bump(&e.counters.frames_held, 1);
                bump(&e.counters.bytes_held, f.len as u64);
            }
        }
        Verdict::Hold(id)
    }
}

/// Every rule's counters by id, kept after the rule is removed so its final stats can
/// still be read.
pub(crate) type StatsTable = HashMap<RuleId, Arc<Counters>>;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn set(rules: Vec<Rule>) -> (RuleSet, Vec<Arc<Counters>>) {
        let mut s = RuleSet::default();
        let mut counters = Vec::new();
        for (i, r) in rules.into_iter().enumerate() {
            let c = Arc::new(Counters::default());
            s.insert(RuleId(i as u64), r, c.clone());
            counters.push(c);
        }
        (s, counters)
    }

    fn frame(client: Option<&str>, direction: Direction, api_key: i16) -> FrameInfo<'_> {
        FrameInfo {
            client: ClientId::Known(client),
            direction,
            api_key: Some(api_key),
            len: 10,
            leader_sync: false,
        }
    }

    #[test]
    fn matching_narrows_by_client_api_and_direction() {
        let (s, _) = set(vec![Rule::blackhole()
            .client_id("a")
            .api_key(12)
            .direction(Direction::ToBroker)]);
        let mut rng = StdRng::seed_from_u64(1);
        let hold = Verdict::Hold(RuleId(0));
        assert_eq!(
            s.judge(&frame(Some("a"), Direction::ToBroker, 12), None, &mut rng),
            hold
        );
        for f in [
            frame(Some("b"), Direction::ToBroker, 12),
            frame(None, Direction::ToBroker, 12),
            frame(Some("a"), Direction::ToClient, 12),
            frame(Some("a"), Direction::ToBroker, 13),
        ] {
            assert_eq!(s.judge(&f, None, &mut rng), Verdict::Pass, "{f:?}");
        }
        let unknown = FrameInfo {
            client: ClientId::Unknown,
            ..frame(None, Direction::ToBroker, 12)
        };
        assert_eq!(s.judge(&unknown, None, &mut rng), Verdict::Pass);
    }

    #[test]
    fn most_destructive_rule_wins() {
        let (s, c) = set(vec![
            Rule::latency(5, 0),
            Rule::blackhole(),
            Rule::drop_api(12),
            Rule::reset().api_key(3),
        ]);
        let mut rng = StdRng::seed_from_u64(1);
        let f = |api| frame(Some("x"), Direction::ToBroker, api);
        assert_eq!(s.judge(&f(3), None, &mut rng), Verdict::Reset(RuleId(3)));
        assert_eq!(s.judge(&f(12), None, &mut rng), Verdict::Drop);
        assert_eq!(s.judge(&f(1), None, &mut rng), Verdict::Hold(RuleId(1)));
        assert_eq!(c[2].snapshot().bytes_dropped, 10);
        assert_eq!(c[1].snapshot().frames_held, 1);
        // Judged again while still held: not counted twice.
        assert_eq!(
            s.judge(&f(1), Some(RuleId(1)), &mut rng),
            Verdict::Hold(RuleId(1))
        );
        assert_eq!(c[1].snapshot().frames_held, 1);
        assert_eq!(c[0].snapshot(), RuleStats::default());
    }

    #[test]
    fn latencies_add_up_within_jitter() {
        let (s, c) = set(vec![Rule::latency(100, 20), Rule::latency(50, 0)]);
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let Verdict::Delay(d) = s.judge(&frame(None, Direction::ToClient, 1), None, &mut rng)
            else {
                panic!("expected a delay");
            };
            assert!((130..=170).contains(&d.as_millis()), "{d:?}");
        }
        assert_eq!(c[0].snapshot().frames_delayed, 200);
        assert_eq!(c[1].snapshot().frames_matched, 200);
    }

    #[test]
    fn connection_resets_need_a_known_client_when_they_name_one() {
        let (s, _) = set(vec![
            Rule::reset().client_id("a"),
            Rule::reset().api_key(12),
        ]);
        assert_eq!(s.resets_connection(ClientId::Unknown), None);
        assert_eq!(s.resets_connection(ClientId::Known(Some("b"))), None);
        assert_eq!(
            s.resets_connection(ClientId::Known(Some("a"))),
            Some(RuleId(0))
        );
        let (s, _) = set(vec![Rule::reset()]);
        assert_eq!(s.resets_connection(ClientId::Unknown), Some(RuleId(0)));
    }

    #[test]
    fn drop_api_requires_an_api_key() {
        assert_eq!(
            Rule::new(Action::DropApi).validate(),
            Err(RuleError::DropApiWithoutApiKey)
        );
        assert_eq!(Rule::drop_api(12).validate(), Ok(()));
    }

    #[test]
    fn rules_round_trip_through_json() {
        let r = Rule::latency(10, 2)
            .client_id("c")
            .direction(Direction::ToClient);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), r);
        let parsed: Rule =
            serde_json::from_str(r#"{"action":{"kind":"drop_api"},"matcher":{"api_key":12}}"#)
                .unwrap();
        assert_eq!(parsed.matcher.direction, Direction::Both);
    }
}
