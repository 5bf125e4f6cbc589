//! Kafka framing: every message is `i32 size` + body. The proxy reads whole frames and
//! looks only at the few header fields it routes on; everything else passes untouched.

use std::collections::VecDeque;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes of the big-endian `i32` size prefix.
pub(crate) const SIZE_LEN: usize = 4;

/// Pre-allocate at most this much from a frame's declared size, then grow by doubling.
/// A bogus or hostile size then costs memory only as its bytes actually arrive, and a
/// real 100 MiB frame costs a handful of reallocations (linear, never quadratic).
const PREALLOC_LIMIT: usize = 1 << 20;

/// What reading one frame produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// A complete frame, size prefix included, ready to forward byte for byte.
    Frame(Vec<u8>),
    /// The peer closed cleanly between two frames.
    Eof,
    /// The peer closed inside a frame; `got` of `want` bytes had arrived.
    Truncated { got: usize, want: usize },
}

/// Reads the next frame. Reads split anywhere (even 1 byte at a time) are reassembled;
/// bytes past the frame stay in `r` for the next call (wrap the socket in a `BufReader`
/// so several small frames in one segment cost one syscall).
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<ReadOutcome> {
    let mut size_buf = [0u8; SIZE_LEN];
    let mut got = 0;
    while got < SIZE_LEN {
        let n = r.read(&mut size_buf[got..]).await?;
        if n == 0 {
            return Ok(if got == 0 {
                ReadOutcome::Eof
            } else {
                ReadOutcome::Truncated {
                    got,
                    want: SIZE_LEN,
                }
            });
        }
        got += n;
    }
    let size = i32::from_be_bytes(size_buf);
    let body_len = usize::try_from(size).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("negative Kafka frame size {size}"),
        )
    })?;
    let want = SIZE_LEN + body_len;

    let mut buf = vec![0u8; SIZE_LEN + body_len.min(PREALLOC_LIMIT)];
    buf[..SIZE_LEN].copy_from_slice(&size_buf);
    let mut filled = SIZE_LEN;
    while filled < want {
        if filled == buf.len() {
            // Double, but never past the frame: the last step lands exactly on `want`.
            let grow = buf.len().min(want - buf.len());
            buf.resize(buf.len() + grow, 0);
        }
        let n = r.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(ReadOutcome::Truncated { got: filled, want });
        }
        filled += n;
    }
    Ok(ReadOutcome::Frame(buf))
}

/// The request header fields the proxy routes on (common to every header version: the
/// tagged fields of flexible versions come after `client_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    /// `None` when the client sent a null client id.
    pub client_id: Option<String>,
}

/// Parses the header of a request frame (size prefix included). `None` when the frame is
/// too short or the client id is malformed (e.g. raw SASL v0 tokens): such frames are
/// still forwarded, they just match no API-specific rule.
pub fn parse_request_header(frame: &[u8]) -> Option<RequestHeader> {
    let body = frame.get(SIZE_LEN..)?;
    let api_key = i16::from_be_bytes(body.get(0..2)?.try_into().ok()?);
    let api_version = i16::from_be_bytes(body.get(2..4)?.try_into().ok()?);
    let correlation_id = i32::from_be_bytes(body.get(4..8)?.try_into().ok()?);
    let len = i16::from_be_bytes(body.get(8..10)?.try_into().ok()?);
    let client_id = match len {
        -1 => None,
        n if n >= 0 => {
            let raw = body.get(10..10 + n as usize)?;
            Some(String::from_utf8_lossy(raw).into_owned())
        }
        _ => return None,
    };
    Some(RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id,
    })
}

/// The correlation id of a response frame (size prefix included): the first field of
/// every response header version.
pub fn parse_response_correlation_id(frame: &[u8]) -> Option<i32> {
    let body = frame.get(SIZE_LEN..)?;
    Some(i32::from_be_bytes(body.get(0..4)?.try_into().ok()?))
}

/// SyncGroup's API key, and the first version with flexible (compact) encoding.
const SYNC_GROUP: i16 = 14;
const SYNC_GROUP_FLEXIBLE: i16 = 4;

/// Whether a request frame is a SyncGroup that carries assignments: the group leader's.
/// Followers send theirs with none. `false` for anything else or anything unparsable.
pub fn is_leader_sync_group(frame: &[u8]) -> bool {
    sync_group_assignments(frame).is_some_and(|n| n > 0)
}

/// The number of assignments a SyncGroup request carries (versions 0-5).
fn sync_group_assignments(frame: &[u8]) -> Option<u64> {
    let h = parse_request_header(frame)?;
    if h.api_key != SYNC_GROUP {
        return None;
    }
    let flexible = h.api_version >= SYNC_GROUP_FLEXIBLE;
    let client_id_len = h.client_id.as_ref().map_or(0, String::len);
    let mut c = Cursor {
        buf: frame.get(SIZE_LEN..)?,
        pos: 10 + client_id_len,
    };
    if flexible {
        c.skip_tagged_fields()?;
    }
    c.string(flexible)?; // group_id
    c.skip(4)?; // generation_id
    c.string(flexible)?; // member_id
    if h.api_version >= 3 {
        c.string(flexible)?; // group_instance_id (nullable)
    }
    if h.api_version >= 5 {
        c.string(flexible)?; // protocol_type (nullable)
        c.string(flexible)?; // protocol_name (nullable)
    }
    if flexible {
        Some(c.uvarint()?.saturating_sub(1))
    } else {
        let n = i32::from_be_bytes(c.take(4)?.try_into().ok()?);
        Some(n.max(0) as u64)
    }
}

/// Reads Kafka's primitive types from a request body.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let out = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// Skips a (nullable) string: `i16` length, or a compact one (`uvarint` length + 1).
    fn string(&mut self, compact: bool) -> Option<()> {
        let len = if compact {
            self.uvarint()?.checked_sub(1).map_or(0, |n| n as usize)
        } else {
            let n = i16::from_be_bytes(self.take(2)?.try_into().ok()?);
            n.max(0) as usize
        };
        self.skip(len)
    }

    fn skip_tagged_fields(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?; // tag
            let size = self.uvarint()? as usize;
            self.skip(size)?;
        }
        Some(())
    }
}

/// Most requests remembered per connection. Requests that never get a response (Produce
/// with acks=0) are pruned as later responses arrive; the cap only guards a connection
/// that never sees a response at all.
const MAX_IN_FLIGHT: usize = 1 << 16;

/// Requests forwarded to the broker and not yet answered, in the order they were sent, so
/// a response's correlation id maps back to the API it answers.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    /// (correlation id, api key, api version)
    sent: VecDeque<(i32, i16, i16)>,
}

impl InFlight {
    /// Records a request just before it is written to the broker.
    pub(crate) fn sent(&mut self, correlation_id: i32, api_key: i16, api_version: i16) {
        if self.sent.len() == MAX_IN_FLIGHT {
            self.sent.pop_front();
        }
        self.sent.push_back((correlation_id, api_key, api_version));
    }

    /// The API (key, version) a response answers. A broker answers a connection's
    /// requests in the order it received them, so older entries left before the match
    /// never get an answer.
    pub(crate) fn answered(&mut self, correlation_id: i32) -> Option<(i16, i16)> {
        let pos = self
            .sent
            .iter()
            .position(|(c, _, _)| *c == correlation_id)?;
        let (_, api_key, api_version) = self.sent[pos];
        self.sent.drain(..=pos);
        Some((api_key, api_version))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    fn request(
        api_key: i16,
        correlation_id: i32,
        client_id: Option<&str>,
        extra: &[u8],
    ) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&api_key.to_be_bytes());
        body.extend_from_slice(&3i16.to_be_bytes());
        body.extend_from_slice(&correlation_id.to_be_bytes());
        match client_id {
            Some(c) => {
                body.extend_from_slice(&(c.len() as i16).to_be_bytes());
                body.extend_from_slice(c.as_bytes());
            }
            None => body.extend_from_slice(&(-1i16).to_be_bytes()),
        }
        body.extend_from_slice(extra);
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        frame
    }

    /// A SyncGroup request of `version` with `assignments` member assignments.
    fn sync_group(version: i16, assignments: usize) -> Vec<u8> {
        let flexible = version >= 4;
        let string = |b: &mut Vec<u8>, s: &str| {
            if flexible {
                b.push(s.len() as u8 + 1);
            } else {
                b.extend_from_slice(&(s.len() as i16).to_be_bytes());
            }
            b.extend_from_slice(s.as_bytes());
        };
        let mut body = Vec::new();
        body.extend_from_slice(&14i16.to_be_bytes());
        body.extend_from_slice(&version.to_be_bytes());
        body.extend_from_slice(&7i32.to_be_bytes());
        body.extend_from_slice(&2i16.to_be_bytes());
        body.extend_from_slice(b"C1");
        if flexible {
            body.push(0); // header tagged fields
        }
        string(&mut body, "group");
        body.extend_from_slice(&3i32.to_be_bytes());
        string(&mut body, "member-1");
        if version >= 3 {
            if flexible {
                body.push(0); // null
            } else {
                body.extend_from_slice(&(-1i16).to_be_bytes());
            }
        }
        if version >= 5 {
            string(&mut body, "consumer");
            string(&mut body, "range");
        }
        if flexible {
            body.push(assignments as u8 + 1);
        } else {
            body.extend_from_slice(&(assignments as i32).to_be_bytes());
        }
        for i in 0..assignments {
            string(&mut body, &format!("member-{i}"));
            if flexible {
                body.push(3);
                body.extend_from_slice(&[0, 1]);
                body.push(0); // tagged fields
            } else {
                body.extend_from_slice(&2i32.to_be_bytes());
                body.extend_from_slice(&[0, 1]);
            }
        }
        if flexible {
            body.push(0);
        }
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        frame
    }

    #[test]
    fn the_leaders_sync_group_is_told_from_the_followers_in_every_version() {
        for version in 0..=5 {
            assert!(is_leader_sync_group(&sync_group(version, 3)), "v{version}");
            assert!(!is_leader_sync_group(&sync_group(version, 0)), "v{version}");
        }
        // Not a SyncGroup, or cut short: never the leader's.
        assert!(!is_leader_sync_group(&request(12, 1, Some("C1"), &[])));
        let full = sync_group(5, 3);
        assert!(!is_leader_sync_group(&full[..full.len() / 2]));
    }

    /// Yields the stream in the given chunk sizes, one chunk per read at most.
    struct Chunked {
        data: Vec<u8>,
        pos: usize,
        chunks: Vec<usize>,
        next: usize,
    }

    impl AsyncRead for Chunked {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let chunk = self
                .chunks
                .get(self.next)
                .copied()
                .unwrap_or(usize::MAX)
                .max(1);
            self.next += 1;
            let n = chunk.min(buf.remaining()).min(self.data.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.data[start..start + n]);
            self.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    fn read_all(data: Vec<u8>, chunks: Vec<usize>) -> Vec<ReadOutcome> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut r = Chunked {
                data,
                pos: 0,
                chunks,
                next: 0,
            };
            let mut out = Vec::new();
            loop {
                let o = read_frame(&mut r).await.unwrap();
                let done = !matches!(o, ReadOutcome::Frame(_));
                out.push(o);
                if done {
                    return out;
                }
            }
        })
    }

    #[test]
    fn parses_request_header() {
        let f = request(12, 77, Some("consumer-1"), b"rest");
        let h = parse_request_header(&f).unwrap();
        assert_eq!(
            h,
            RequestHeader {
                api_key: 12,
                api_version: 3,
                correlation_id: 77,
                client_id: Some("consumer-1".into()),
            }
        );
        assert_eq!(
            parse_request_header(&request(3, 1, None, b""))
                .unwrap()
                .client_id,
            None
        );
        // Too short, or a client id longer than the frame: not a request header.
        assert_eq!(parse_request_header(&[0, 0, 0, 2, 0, 1]), None);
        let mut bad = request(1, 1, Some("abc"), b"");
        bad.truncate(bad.len() - 1);
        assert_eq!(parse_request_header(&bad), None);
    }

    #[test]
    fn parses_response_correlation_id() {
        assert_eq!(
            parse_response_correlation_id(&[0, 0, 0, 4, 0, 0, 1, 2]),
            Some(258)
        );
        assert_eq!(parse_response_correlation_id(&[0, 0, 0, 2, 0, 0]), None);
    }

    #[test]
    fn in_flight_maps_responses_and_prunes_unanswered() {
        let mut f = InFlight::default();
        f.sent(1, 0, 0); // Produce acks=0: never answered
        f.sent(2, 12, 0);
        f.sent(3, 8, 0);
        assert_eq!(f.answered(2), Some((12, 0)));
        assert_eq!(f.len(), 1, "the unanswered request before it is pruned");
        assert_eq!(f.answered(99), None);
        assert_eq!(f.answered(3), Some((8, 0)));
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn eof_and_truncation() {
        assert_eq!(read_all(vec![], vec![]), vec![ReadOutcome::Eof]);
        assert_eq!(
            read_all(vec![0, 0], vec![]),
            vec![ReadOutcome::Truncated { got: 2, want: 4 }]
        );
        assert_eq!(
            read_all(vec![0, 0, 0, 5, 1, 2], vec![]),
            vec![ReadOutcome::Truncated { got: 6, want: 9 }]
        );
    }

    #[test]
    fn negative_size_is_an_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt
            .block_on(read_frame(&mut &[0xff, 0xff, 0xff, 0xff][..]))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn large_frame_grows_to_exact_size() {
        let body_len = 3 * PREALLOC_LIMIT + 17;
        let mut data = (body_len as i32).to_be_bytes().to_vec();
        data.extend((0..body_len).map(|i| i as u8));
        let out = read_all(data.clone(), vec![]);
        match &out[0] {
            ReadOutcome::Frame(f) => {
                assert_eq!(f.len(), data.len());
                assert!(f == &data);
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    proptest! {
        /// However the stream is cut into reads, the same frames come out.
        #[test]
        fn frames_survive_any_split(
            bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
            chunks in prop::collection::vec(1usize..50, 0..200),
        ) {
            let frames: Vec<Vec<u8>> = bodies
                .iter()
                .map(|b| {
                    let mut f = (b.len() as i32).to_be_bytes().to_vec();
                    f.extend_from_slice(b);
                    f
                })
                .collect();
            let out = read_all(frames.concat(), chunks);
            let mut expected: Vec<ReadOutcome> =
                frames.into_iter().map(ReadOutcome::Frame).collect();
            expected.push(ReadOutcome::Eof);
            prop_assert_eq!(out, expected);
        }
    }
}
