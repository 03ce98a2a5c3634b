//! Mist's WebSocket frames (`{"event": …, "channel": …, …}`) decoded into what a connection
//! acts on. Pure: no state, no metrics.

use serde_json::{Map, Value};

/// One received frame, decoded.
#[derive(Debug, PartialEq)]
pub(super) enum Frame {
    /// Not a JSON object, or a `data` frame whose payload is not JSON.
    Invalid,
    /// `channel_subscribed`.
    Subscribed {
        /// The confirmed channel.
        channel: String,
    },
    /// A refusal naming a channel (`subscribe_failed`, `channel_subscribe_failed`, `error`).
    Refused {
        /// The refused channel.
        channel: String,
        /// Mist's reason, empty when it gave none.
        reason: String,
    },
    /// A `data` frame with its payload decoded.
    Data {
        /// The channel (may be empty or one we left; the connection decides).
        channel: String,
        /// The payload.
        data: Value,
    },
    /// Anything else (an event we do not act on, or an error naming no channel).
    Other,
}

/// Decodes one text frame.
pub(super) fn parse(text: &str) -> Frame {
    let Ok(Value::Object(mut frame)) = serde_json::from_str::<Value>(text) else {
        return Frame::Invalid;
    };
    let event = frame.get("event").and_then(Value::as_str).unwrap_or_default().to_owned();
    let channel = frame.get("channel").and_then(Value::as_str).unwrap_or_default().to_owned();
    match event.as_str() {
        "channel_subscribed" => Frame::Subscribed { channel },
        "subscribe_failed" | "channel_subscribe_failed" | "error" if !channel.is_empty() => {
            Frame::Refused { channel, reason: refusal_reason(&frame) }
        }
        "data" => match payload(frame.remove("data")) {
            Some(data) => Frame::Data { channel, data },
            None => Frame::Invalid,
        },
        _ => Frame::Other,
    }
}

/// Decodes a binary frame: its bytes must be UTF-8 text.
pub(super) fn parse_bytes(bytes: &[u8]) -> Frame {
    std::str::from_utf8(bytes).map_or(Frame::Invalid, parse)
}

/// The first reason field Mist filled, as text.
fn refusal_reason(frame: &Map<String, Value>) -> String {
    ["reason", "message", "detail", "error"]
        .iter()
        .find_map(|k| frame.get(*k).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
        .unwrap_or_default()
}

/// A `data` payload: a JSON string is decoded (the stats channels send that), an object or
/// array is taken as is; anything else is invalid.
fn payload(data: Option<Value>) -> Option<Value> {
    match data {
        Some(Value::String(s)) => serde_json::from_str::<Value>(&s).ok(),
        Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_is_decoded_from_a_string_or_taken_as_an_object() {
        let want = Frame::Data { channel: "/c".into(), data: json!({"mac": "m"}) };
        assert_eq!(parse(r#"{"event":"data","channel":"/c","data":"{\"mac\":\"m\"}"}"#), want);
        assert_eq!(parse(r#"{"event":"data","channel":"/c","data":{"mac":"m"}}"#), want);
        assert_eq!(parse(r#"{"event":"data","channel":"/c","data":"not json"}"#), Frame::Invalid);
        assert_eq!(parse(r#"{"event":"data","channel":"/c","data":3}"#), Frame::Invalid);
    }

    #[test]
    fn refusals_need_a_channel_and_carry_the_first_reason() {
        assert_eq!(
            parse(r#"{"event":"subscribe_failed","channel":"/c","message":"no","error":"x"}"#),
            Frame::Refused { channel: "/c".into(), reason: "no".into() }
        );
        assert_eq!(
            parse(r#"{"event":"error","channel":"/c","detail":{"k":1}}"#),
            Frame::Refused { channel: "/c".into(), reason: r#"{"k":1}"#.into() }
        );
        assert_eq!(parse(r#"{"event":"error","message":"no channel"}"#), Frame::Other);
    }

    #[test]
    fn other_shapes() {
        assert_eq!(
            parse(r#"{"event":"channel_subscribed","channel":"/c"}"#),
            Frame::Subscribed { channel: "/c".into() }
        );
        assert_eq!(parse("[1]"), Frame::Invalid);
        assert_eq!(parse_bytes(&[0xff, 0xfe]), Frame::Invalid);
        assert_eq!(parse_bytes(br#"{"event":"pong"}"#), Frame::Other);
    }
}
