//! The webhook body: `{"topic": "...", "events": [{...}, ...]}`.

use serde_json::{Map, Value};

/// One webhook delivery's body, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The topic, normalised (`_` → `-`, lowercase).
    pub topic: String,
    /// The events, each a JSON object (fields and types kept as sent).
    pub events: Vec<Map<String, Value>>,
}

/// Why a body is not a Mist webhook envelope. Shown to the sender in a 400 answer.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    /// Not JSON at all.
    #[error("body is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("body must be a JSON object with `topic` and `events`")]
    NotObject,
    /// `topic` missing or not a non-empty string.
    #[error("`topic` must be a non-empty string")]
    Topic,
    /// `topic` too long or with characters outside [`topic_char_ok`]; holds at most the first
    /// [`MAX_TOPIC_LEN`] characters, escaped, so a huge or hostile topic is never echoed whole.
    #[error(
        "`topic` must be at most {max} characters, each an ASCII letter, digit, `-`, `_` or `.` (got {0})",
        max = MAX_TOPIC_LEN
    )]
    TopicName(String),
    /// `events` missing or not an array.
    #[error("`events` must be an array of objects")]
    Events,
    /// An element of `events` is not an object.
    #[error("`events[{0}]` must be an object")]
    Event(usize),
}

impl Envelope {
    /// Parses and validates a body. Never panics, whatever the bytes.
    pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
        let v: Value = match std::str::from_utf8(body) {
            // One check of the whole body is cheaper than serde_json's check of every string
            // (from a `str` it checks none); JSON is UTF-8 throughout, so the verdict is the same.
            Ok(text) => serde_json::from_str(text),
            // Parsed as bytes for serde_json's error, which says where the bad byte is.
            Err(_) => serde_json::from_slice(body),
        }
        .map_err(|e| EnvelopeError::Json(e.to_string()))?;
        // Taken out of the map, not re-deserialized: that would rebuild every event's map.
        let Value::Object(mut fields) = v else { return Err(EnvelopeError::NotObject) };
        let topic = match fields.remove("topic") {
            Some(Value::String(t)) => checked_topic(&t)?,
            _ => return Err(EnvelopeError::Topic),
        };
        let events = match fields.remove("events") {
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, e)| match e {
                    Value::Object(m) => Ok(m),
                    _ => Err(EnvelopeError::Event(i)),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(EnvelopeError::Events),
        };
        Ok(Envelope { topic, events })
    }
}

/// What the ingest handler needs to know about a body: its topic and how many events it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The topic, normalised as [`Envelope::topic`].
    pub topic: String,
    /// Number of events.
    pub events: usize,
}

impl Envelope {
    /// Checks a body exactly as [`Envelope::parse`] does (same answer, same error, for any
    /// bytes) without building the events: one pass, no map or string allocated per field.
    ///
    /// The handler answers from this; the full parse happens once, where the events are
    /// translated. Numbers and strings are still fully decoded (an out-of-range number or a bad
    /// escape fails here exactly as in `parse`), so nothing accepted here can fail later.
    pub fn validate(body: &[u8]) -> Result<Summary, EnvelopeError> {
        // As in `parse`: from a `str` when the body is UTF-8, so strings are not checked again.
        let shape = match std::str::from_utf8(body) {
            Ok(text) => top_shape(&mut serde_json::Deserializer::from_str(text)),
            Err(_) => top_shape(&mut serde_json::Deserializer::from_slice(body)),
        }
        .map_err(|e| EnvelopeError::Json(e.to_string()))?;
        let top = shape.ok_or(EnvelopeError::NotObject)?;
        let topic = match top.topic {
            Some(Some(t)) => checked_topic(&t)?,
            _ => return Err(EnvelopeError::Topic),
        };
        match top.events {
            Some(Events::Array { count, first_bad: None }) => Ok(Summary { topic, events: count }),
            Some(Events::Array { first_bad: Some(i), .. }) => Err(EnvelopeError::Event(i)),
            _ => Err(EnvelopeError::Events),
        }
    }
}

/// Reads one JSON value and the end of input: the top-level members that matter when it is an
/// object, `None` for any other value.
fn top_shape<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
) -> serde_json::Result<Option<Top>> {
    use serde::Deserializer as _;
    let shape = de.deserialize_any(TopVisitor)?;
    de.end()?;
    Ok(shape)
}

/// The top-level members that matter; the last occurrence of a key wins, as in a JSON map.
#[derive(Default)]
struct Top {
    /// `Some(None)`: present but not a string.
    topic: Option<Option<String>>,
    events: Option<Events>,
}

enum Events {
    Array { count: usize, first_bad: Option<usize> },
    NotArray,
}

/// Implements `expecting` (any JSON value) and the scalar `visit_*` methods of a visitor as
/// "return this constant": the validators only care about objects, arrays and (for `topic`)
/// strings.
macro_rules! scalars_are {
    ($v:expr) => {
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}

/// `Some(top)` for an object, `None` for any other JSON value (consumed and checked all the same).
struct TopVisitor;

impl<'de> serde::de::Visitor<'de> for TopVisitor {
    type Value = Option<Top>;
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut top = Top::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "topic" => top.topic = Some(map.next_value::<TopicValue>()?.0),
                "events" => top.events = Some(map.next_value::<EventsValue>()?.0),
                _ => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(Some(top))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|_| None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    scalars_are!(None);
}

fn drain_seq<'de, A: serde::de::SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Checked>()?.is_some() {}
    Ok(())
}

/// Any JSON value, decoded (numbers range-checked, strings unescaped) and dropped. Unlike
/// `IgnoredAny` this goes through `deserialize_any`, so it rejects exactly what `Value` rejects.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor).map(|_| Checked)
    }
}

/// Visits any value; `true` when it is an object.
struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = bool;
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(true)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        drain_seq(seq).map(|_| false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    scalars_are!(false);
}

/// `topic`'s value: the string, or `None` for any other type.
struct TopicValue(Option<String>);

impl<'de> serde::Deserialize<'de> for TopicValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Option<String>;
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Some(s.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                CheckedVisitor.visit_map(map).map(|_| None)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq).map(|_| None)
            }
            scalars_are!(None);
        }
        d.deserialize_any(V).map(TopicValue)
    }
}

/// `events`' value: an array (counting its elements and noting the first non-object) or not.
struct EventsValue(Events);

impl<'de> serde::Deserialize<'de> for EventsValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Events;
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Events, A::Error> {
                let (mut count, mut first_bad) = (0, None);
                while let Some(IsObject(is_object)) = seq.next_element::<IsObject>()? {
                    if !is_object && first_bad.is_none() {
                        first_bad = Some(count);
                    }
                    count += 1;
                }
                Ok(Events::Array { count, first_bad })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Events, A::Error> {
                CheckedVisitor.visit_map(map).map(|_| Events::NotArray)
            }
            fn visit_str<E>(self, _: &str) -> Result<Events, E> {
                Ok(Events::NotArray)
            }
            scalars_are!(Events::NotArray);
        }
        d.deserialize_any(V).map(EventsValue)
    }
}

/// Any value, remembering whether it was an object.
struct IsObject(bool);

impl<'de> serde::Deserialize<'de> for IsObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor).map(IsObject)
    }
}

/// Longest topic accepted, in bytes (Mist's longest is 21; room for new ones and variants).
pub const MAX_TOPIC_LEN: usize = 64;

/// Whether a topic may contain `c`: ASCII letters, digits, `-`, `_`, `.`. A topic becomes a log
/// attribute, an event name and (when known) a metric label, so it stays short and plain.
pub fn topic_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The topic as sent, checked (non-empty after trimming, at most [`MAX_TOPIC_LEN`] bytes of
/// [`topic_char_ok`] characters) and normalised. `parse` and `validate` both decide here, so
/// they cannot disagree.
fn checked_topic(raw: &str) -> Result<String, EnvelopeError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(EnvelopeError::Topic);
    }
    if t.len() > MAX_TOPIC_LEN || !t.chars().all(topic_char_ok) {
        let shown: String = t.chars().take(MAX_TOPIC_LEN).collect();
        let more = if t.chars().nth(MAX_TOPIC_LEN).is_some() { "…" } else { "" };
        return Err(EnvelopeError::TopicName(format!("{shown:?}{more}")));
    }
    Ok(normalize_topic(t))
}

/// Normalises a topic name: trims, lowercases, and treats `_` as `-` (Mist's spec versions
/// disagree on the separator).
pub fn normalize_topic(t: &str) -> String {
    t.trim().to_ascii_lowercase().replace('_', "-")
}

/// Topics Mist documents. Others are accepted and forwarded as logs; this list bounds metric
/// label values (anything else is labelled `other`).
pub const KNOWN_TOPICS: &[&str] = &[
    "alarms",
    "asset-raw-rssi",
    "audits",
    "client-info",
    "client-join",
    "client-latency",
    "client-sessions",
    "device-events",
    "device-updowns",
    "discovered-raw-rssi",
    "guest-authorizations",
    "location",
    "location-asset",
    "location-centrak",
    "location-client",
    "location-sdk",
    "location-unclient",
    "minis-application",
    "minis-reachability",
    "mxedge-events",
    "nac-accounting",
    "nac-events",
    "occupancy-alerts",
    "ping",
    "rssizone",
    "sdkclient-scan-data",
    "site-sle",
    "wifi-conn-raw",
    "wifi-unconn-raw",
    "zone",
];

/// The topic as a bounded metric label: itself if known, else `other`.
pub fn topic_label(topic: &str) -> &'static str {
    KNOWN_TOPICS.binary_search(&topic).map_or("other", |i| KNOWN_TOPICS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let e = Envelope::parse(br#"{"topic":"Device_Events","events":[{"a":1}]}"#).unwrap();
        assert_eq!(e.topic, "device-events");
        assert_eq!(e.events.len(), 1);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(Envelope::parse(b"nope"), Err(EnvelopeError::Json(_))));
        assert_eq!(Envelope::parse(b"[1]"), Err(EnvelopeError::NotObject));
        assert_eq!(Envelope::parse(br#"{"events":[]}"#), Err(EnvelopeError::Topic));
        assert_eq!(Envelope::parse(br#"{"topic":"x","events":{}}"#), Err(EnvelopeError::Events));
        assert_eq!(Envelope::parse(br#"{"topic":"x","events":[{},2]}"#), Err(EnvelopeError::Event(1)));
    }

    /// `validate` must give the same answer as `parse` for any bytes: the handler answers 200
    /// from it, and the exporter parses in full later.
    #[test]
    fn validate_agrees_with_parse() {
        let cases: &[&[u8]] = &[
            br#"{"topic":"Device_Events","events":[{"a":1},{"b":[1,{"c":null}]}]}"#,
            br#"{"topic":"x","events":[]} "#,
            br#"{"topic":"x","events":[]} x"#,
            b"nope",
            b"",
            b"[1]",
            b"12",
            br#""s""#,
            br#"{"events":[]}"#,
            br#"{"topic":"  ","events":[]}"#,
            br#"{"topic":5,"events":[]}"#,
            br#"{"topic":{"a":1},"events":[]}"#,
            br#"{"topic":"x","events":{}}"#,
            br#"{"topic":"x","events":[{},2,{},"s"]}"#,
            br#"{"topic":"x","events":[{"t":1e400}]}"#,
            br#"{"topic":"x","events":[{"t":"\ud800"}]}"#,
            br#"{"topic":"x","events":[{"t":"\u00e9\n"}]}"#,
            br#"{"topic":"a","topic":"b","events":[1],"events":[{}]}"#,
            br#"{"topic":"x","events":[{}],"extra":{"deep":[1,2,{"x":-0.5e-3}]}}"#,
            br#"{"topic":"x","events":[{"a":1,"a":2}]}"#,
            br#"{"top\u0069c":"escaped-key","events":[]}"#,
            br#"{"topic":"x","events":[{"n":18446744073709551616}]}"#,
            b"{\"topic\":\"x\",\"events\":[{\"k\":\"\xff\"}]}",
            b"{\"\xff\":1}",
            br#"{"topic":"bad\u0001topic","events":[]}"#,
            br#"{"topic":"d\u00e9vice-events","events":[]}"#,
            br#"{"topic":" site.sle_v2 ","events":[]}"#,
        ];
        for c in cases {
            check_agree(c);
        }
        let long = format!(r#"{{"topic":"{}","events":[]}}"#, "a".repeat(65));
        check_agree(long.as_bytes());
        let deep = format!(r#"{{"topic":"x","events":[{}{}]}}"#, "[".repeat(200), "]".repeat(200));
        check_agree(deep.as_bytes());
        let deep_obj =
            format!(r#"{{"topic":"x","events":[{}1{}]}}"#, r#"{"a":"#.repeat(200), "}".repeat(200));
        check_agree(deep_obj.as_bytes());
    }

    fn check_agree(body: &[u8]) {
        let full = Envelope::parse(body).map(|e| Summary { topic: e.topic, events: e.events.len() });
        assert_eq!(Envelope::validate(body), full, "{}", String::from_utf8_lossy(body));
        // Reading UTF-8 bodies as `str` changes nothing: the same JSON verdict and message as
        // serde_json reading the bytes.
        match serde_json::from_slice::<Value>(body) {
            Err(e) => assert_eq!(full, Err(EnvelopeError::Json(e.to_string()))),
            Ok(_) => assert!(!matches!(full, Err(EnvelopeError::Json(_))), "{full:?}"),
        }
    }

    #[test]
    fn topics_are_bounded_in_length_and_characters() {
        let body = |t: &str| serde_json::json!({"topic": t, "events": []}).to_string();
        let ok = Envelope::parse(body(&"a".repeat(MAX_TOPIC_LEN)).as_bytes()).unwrap();
        assert_eq!(ok.topic.len(), MAX_TOPIC_LEN);
        assert_eq!(Envelope::parse(body(" Site_SLE.v2 ").as_bytes()).unwrap().topic, "site-sle.v2");
        let Err(EnvelopeError::TopicName(shown)) = Envelope::parse(body(&"b".repeat(1 << 20)).as_bytes())
        else {
            panic!("a 1 MiB topic must be refused")
        };
        assert_eq!(shown, format!("\"{}\"…", "b".repeat(MAX_TOPIC_LEN)));
        let e = Envelope::parse(body("bad\u{1}topic\n").as_bytes()).unwrap_err();
        assert_eq!(e, EnvelopeError::TopicName(r#""bad\u{1}topic""#.into()));
        assert!(e.to_string().contains("at most 64 characters"), "{e}");
        for t in ["a/b", "a b", "dévice", "x;y", "<script>"] {
            assert!(matches!(Envelope::parse(body(t).as_bytes()), Err(EnvelopeError::TopicName(_))), "{t}");
        }
    }

    #[test]
    fn known_topics_sorted() {
        let mut sorted = KNOWN_TOPICS.to_vec();
        sorted.sort();
        assert_eq!(sorted, KNOWN_TOPICS);
        assert_eq!(topic_label("zone"), "zone");
        assert_eq!(topic_label("evil"), "other");
    }
}
