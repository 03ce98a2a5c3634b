//! Property tests: whatever the bytes, the envelope parser answers with a value or an error,
//! never a panic; well-formed envelopes always parse.

use mist_otel::mist::Envelope;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::parse(&bytes);
    }

    #[test]
    fn json_like_text_never_panics(s in r#"[\{\}\[\]":,a-z0-9 .\-_\\]{0,200}"#) {
        let _ = Envelope::parse(s.as_bytes());
    }

    #[test]
    fn valid_envelopes_parse(topic in "[a-z][a-z_-]{0,20}", n in 0usize..20, ts in 0f64..2e9) {
        let events: Vec<serde_json::Value> = (0..n).map(|i| serde_json::json!({"i": i, "timestamp": ts})).collect();
        let body = serde_json::json!({"topic": topic, "events": events}).to_string();
        let env = Envelope::parse(body.as_bytes()).unwrap();
        prop_assert_eq!(env.events.len(), n);
        prop_assert_eq!(env.topic, topic.replace('_', "-"));
    }
}
