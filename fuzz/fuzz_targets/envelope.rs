//! Any bytes into the webhook envelope parser: it must answer Ok or Err, never panic, what it
//! accepts must hold its invariants, and the handler's allocation-free `validate` must agree
//! with the full `parse` (differential: a body answered 200 must never fail the full parse).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mist_otel::mist::envelope::{Envelope, Summary, normalize_topic, topic_label};

fuzz_target!(|data: &[u8]| {
    let parsed = Envelope::parse(data);
    let validated = Envelope::validate(data);
    assert_eq!(validated.as_ref().err(), parsed.as_ref().err());
    let summary = parsed.as_ref().ok().map(|e| Summary { topic: e.topic.clone(), events: e.events.len() });
    assert_eq!(validated.ok(), summary);
    if let Ok(e) = parsed {
        assert!(!e.topic.is_empty());
        // Normalising is idempotent and the label is bounded.
        assert_eq!(normalize_topic(&e.topic), e.topic);
        let _ = topic_label(&e.topic);
    }
});
