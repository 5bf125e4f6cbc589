//! Byte-level fixes for responses of librdkafka's mock broker (2.12.1), so clients other
//! than librdkafka can use the embedded broker. Each fix turns a mock answer that no
//! Kafka broker would send into the one Kafka sends; none changes what a librdkafka
//! client sees. They run only on proxies in front of the mock
//! (`ProxyOptions::mock_responses`), never as faults.
//!
//! - ApiVersions asked in a version the mock does not serve (the Java client starts at
//!   v4; the mock serves v0-v2): the mock answers UNSUPPORTED_VERSION in a broken
//!   flexible encoding (array length N instead of N+1, no tagged fields), which Java
//!   reads as a throttle of ~20 minutes on that broker. Kafka answers such a request in
//!   the v0 encoding (KIP-511); so does the fix.
//! - The mock advertises group API versions it cannot parse (JoinGroup v6's flexible
//!   encoding is read with 4-byte lengths, and the mock closes the connection). The
//!   advertised maxima of the group APIs are lowered to the versions librdkafka itself
//!   uses with the mock: FindCoordinator 2, JoinGroup 5, Heartbeat 3, LeaveGroup 1,
//!   SyncGroup 3.
//! - Error responses carry null where the protocol has a non-nullable field (SyncGroup's
//!   assignment, JoinGroup's protocol name, leader and member id, FindCoordinator's host):
//!   Java refuses to read them. Nulls become empty.
//! - A follower's SyncGroup that arrives after the leader's gets INVALID_REQUEST, where
//!   Kafka hands it its assignment; it becomes REBALANCE_IN_PROGRESS, so the follower
//!   rejoins instead of failing (the mock's compatibility rules also hold the leader's
//!   SyncGroup back to make this rare).

use super::frame::SIZE_LEN;

const FIND_COORDINATOR: i16 = 10;
const JOIN_GROUP: i16 = 11;
const HEARTBEAT: i16 = 12;
const LEAVE_GROUP: i16 = 13;
const SYNC_GROUP: i16 = 14;
const API_VERSIONS: i16 = 18;

const UNSUPPORTED_VERSION: i16 = 35;
const INVALID_REQUEST: i16 = 42;
const REBALANCE_IN_PROGRESS: i16 = 27;

/// The highest version of each group API that the mock parses correctly.
const MOCK_MAX_VERSIONS: &[(i16, i16)] = &[
    (FIND_COORDINATOR, 2),
    (JOIN_GROUP, 5),
    (HEARTBEAT, 3),
    (LEAVE_GROUP, 1),
    (SYNC_GROUP, 3),
];

/// Offset of the response body in a frame with a v0 response header (size, corr id).
const BODY: usize = SIZE_LEN + 4;

/// The response to request `api_key`/`api_version`, fixed where the mock gets it wrong.
pub(crate) fn fix_mock_response(api_key: i16, api_version: i16, mut frame: Vec<u8>) -> Vec<u8> {
    match (api_key, api_version) {
        (API_VERSIONS, v) if v >= 4 => unsupported_api_versions_as_v0(frame),
        (API_VERSIONS, 0..=2) => {
            lower_group_api_maxima(&mut frame, api_version);
            frame
        }
        (SYNC_GROUP, 1..=3) => {
            // throttle_time_ms, error_code, assignment (bytes)
            fix_error(&mut frame, BODY + 4);
            null_to_empty(&mut frame, BODY + 6, 4);
            frame
        }
        (SYNC_GROUP, 0) => {
            fix_error(&mut frame, BODY);
            null_to_empty(&mut frame, BODY + 2, 4);
            frame
        }
        (JOIN_GROUP, 2..=5) => {
            // throttle, error, generation, protocol_name, leader, member_id (strings)
            let mut at = BODY + 10;
            for _ in 0..3 {
                null_to_empty(&mut frame, at, 2);
                match string_len(&frame, at) {
                    Some(n) => at += 2 + n,
                    None => break,
                }
            }
            frame
        }
        (FIND_COORDINATOR, 1..=2) => {
            // throttle, error, error_message (nullable), node_id, host
            if let Some(n) = string_len(&frame, BODY + 6) {
                null_to_empty(&mut frame, BODY + 6 + 2 + n + 4, 2);
            }
            frame
        }
        _ => frame,
    }
}

/// The length of the (nullable) string whose i16 length is at `at` (null: 0).
fn string_len(frame: &[u8], at: usize) -> Option<usize> {
    let n = i16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    Some(n.max(0) as usize)
}

/// A length field of `width` bytes at `at` holding -1 (null) becomes 0 (empty).
fn null_to_empty(frame: &mut [u8], at: usize, width: usize) {
    if let Some(field) = frame.get_mut(at..at + width) {
        if field.iter().all(|&b| b == 0xff) {
            field.fill(0);
        }
    }
}

/// SyncGroup's INVALID_REQUEST (a follower late for the mock) becomes
/// REBALANCE_IN_PROGRESS.
fn fix_error(frame: &mut [u8], at: usize) {
    if let Some(field) = frame.get_mut(at..at + 2) {
        if i16::from_be_bytes([field[0], field[1]]) == INVALID_REQUEST {
            field.copy_from_slice(&REBALANCE_IN_PROGRESS.to_be_bytes());
        }
    }
}

/// Re-encodes the mock's UNSUPPORTED_VERSION answer to a flexible ApiVersions request
/// as a v0 response (error, then its supported versions), as Kafka sends it.
fn unsupported_api_versions_as_v0(frame: Vec<u8>) -> Vec<u8> {
    let Some(error) = frame
        .get(BODY..BODY + 2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
    else {
        return frame;
    };
    if error != UNSUPPORTED_VERSION {
        return frame;
    }
    // The mock writes the entry count as a plain varint (no +1), then the entries
    // (api_key, min, max) without tagged fields.
    let Some(&count) = frame.get(BODY + 2) else {
        return frame;
    };
    let entries_at = BODY + 3;
    let n = usize::from(count & 0x7f);
    let Some(entries) = frame.get(entries_at..entries_at + n * 6) else {
        return frame;
    };
    let mut body = Vec::with_capacity(4 + 2 + 4 + entries.len());
    body.extend_from_slice(&frame[SIZE_LEN..BODY]); // correlation id
    body.extend_from_slice(&error.to_be_bytes());
    body.extend_from_slice(&(n as i32).to_be_bytes());
    body.extend_from_slice(entries);
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// In a successful ApiVersions v0-v2 response, lowers the group APIs' maxima to what
/// the mock parses.
fn lower_group_api_maxima(frame: &mut [u8], api_version: i16) {
    let _ = api_version; // v0-v2 share the layout up to the entries
    let Some(error) = frame.get(BODY..BODY + 2) else {
        return;
    };
    if error != [0, 0] {
        return;
    }
    let Some(count) = frame
        .get(BODY + 2..BODY + 6)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return;
    };
    for i in 0..count.max(0) as usize {
        let at = BODY + 6 + i * 6;
        let Some(entry) = frame.get_mut(at..at + 6) else {
            return;
        };
        let key = i16::from_be_bytes([entry[0], entry[1]]);
        let max = i16::from_be_bytes([entry[4], entry[5]]);
        if let Some(&(_, cap)) = MOCK_MAX_VERSIONS.iter().find(|(k, _)| *k == key) {
            if max > cap {
                entry[4..6].copy_from_slice(&cap.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as i32 + 4).to_be_bytes().to_vec();
        f.extend_from_slice(&7i32.to_be_bytes()); // correlation id
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn the_mocks_broken_unsupported_version_answer_becomes_v0() {
        // What the mock sent the Java client (after the correlation id).
        let broken = frame(&[0x00, 0x23, 0x01, 0x00, 0x12, 0, 0, 0, 2, 0, 0, 0, 0]);
        let fixed = fix_mock_response(API_VERSIONS, 4, broken);
        let want = frame(&[0x00, 0x23, 0, 0, 0, 1, 0x00, 0x12, 0, 0, 0, 2]);
        assert_eq!(fixed, want);
        // A successful flexible answer is left alone.
        let ok = frame(&[0, 0, 0x02, 0x00, 0x12, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(fix_mock_response(API_VERSIONS, 4, ok.clone()), ok);
    }

    #[test]
    fn group_api_maxima_are_lowered_and_the_rest_left_alone() {
        let mut body = vec![0, 0, 0, 0, 0, 3];
        for (key, max) in [(JOIN_GROUP, 7i16), (1, 13), (HEARTBEAT, 2)] {
            body.extend_from_slice(&key.to_be_bytes());
            body.extend_from_slice(&0i16.to_be_bytes());
            body.extend_from_slice(&max.to_be_bytes());
        }
        let fixed = fix_mock_response(API_VERSIONS, 2, frame(&body));
        let max_of = |i: usize| {
            let at = BODY + 6 + i * 6 + 4;
            i16::from_be_bytes([fixed[at], fixed[at + 1]])
        };
        assert_eq!((max_of(0), max_of(1), max_of(2)), (5, 13, 2));
    }

    #[test]
    fn nulls_in_error_responses_become_empty() {
        // SyncGroup v3: throttle, error 25, null assignment.
        let sync = frame(&[0, 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff]);
        let fixed = fix_mock_response(SYNC_GROUP, 3, sync);
        assert_eq!(&fixed[BODY + 6..], &[0, 0, 0, 0]);
        // JoinGroup v5: throttle, error, generation, three null strings, no members.
        let mut join = vec![0, 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff];
        join.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let fixed = fix_mock_response(JOIN_GROUP, 5, frame(&join));
        assert_eq!(&fixed[BODY + 10..BODY + 16], &[0; 6]);
        // FindCoordinator v2: throttle, error, null message, node -1, null host, port.
        let find = frame(&[
            0, 0, 0, 0, 0, 15, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff,
        ]);
        let fixed = fix_mock_response(FIND_COORDINATOR, 2, find);
        assert_eq!(&fixed[BODY + 12..BODY + 14], &[0, 0], "host");
        assert_eq!(&fixed[BODY + 8..BODY + 12], &[0xff; 4], "node id stays -1");
    }

    #[test]
    fn a_late_followers_invalid_request_becomes_rebalance_in_progress() {
        let sync = frame(&[0, 0, 0, 0, 0, 42, 0, 0, 0, 0]);
        let fixed = fix_mock_response(SYNC_GROUP, 2, sync);
        assert_eq!(&fixed[BODY + 4..BODY + 6], &[0, 27]);
    }
}
