//! Parsing a driver's stdout: one JSON object per line with `timestamp` and `name`.
//! Unknown event names are ignored; anything else malformed is an error that names the
//! driver and quotes the line.

use serde_json::Value;

use crate::history::{Event, Ms};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("driver {member} printed a line that breaks the driver protocol ({reason}): {line:?}")]
pub struct ProtocolError {
    pub member: String,
    pub reason: String,
    pub line: String,
}

/// Parses one stdout line: `Ok(None)` for events outside the protocol (ignored).
pub fn parse_line(member: &str, line: &str) -> Result<Option<(Ms, Event)>, ProtocolError> {
    let err = |reason: String| ProtocolError {
        member: member.to_owned(),
        reason,
        line: line.chars().take(300).collect(),
    };
    let value: Value = serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| err("not a JSON object".into()))?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| err("no string field `name`".into()))?;
    if !Event::DRIVER_EVENTS.contains(&name) {
        return Ok(None);
    }
    let ts = obj
        .get("timestamp")
        .and_then(Value::as_u64)
        .ok_or_else(|| err("no numeric field `timestamp`".into()))?;
    let event: Event = serde_json::from_value(value.clone())
        .map_err(|e| err(format!("bad `{name}` event: {e}")))?;
    Ok(Some((ts, event)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_events_and_ignores_unknown_ones() {
        let line = r#"{"timestamp":5,"name":"partitions_assigned","partitions":[{"topic":"t","partition":1}],"member_id":"x"}"#;
        let (ts, ev) = parse_line("C1", line).unwrap().unwrap();
        assert_eq!(ts, 5);
        assert_eq!(ev.name(), "partitions_assigned");
        assert_eq!(
            parse_line("C1", r#"{"timestamp":1,"name":"record_data","key":null}"#),
            Ok(None)
        );
    }

    #[test]
    fn malformed_lines_name_the_driver_and_quote_the_line() {
        let e = parse_line("C2", "hello world").unwrap_err();
        assert!(e.to_string().contains("driver C2"), "{e}");
        assert!(e.to_string().contains("\"hello world\""), "{e}");
        let e = parse_line(
            "C2",
            r#"{"name":"records_consumed","timestamp":1,"count":"x"}"#,
        )
        .unwrap_err();
        assert!(e.reason.contains("bad `records_consumed` event"), "{e}");
        let e = parse_line("C2", r#"{"name":"partitions_lost","partitions":[]}"#).unwrap_err();
        assert!(e.reason.contains("timestamp"), "{e}");
        let e = parse_line("C2", "[1,2]").unwrap_err();
        assert!(e.reason.contains("not a JSON object"), "{e}");
    }
}
