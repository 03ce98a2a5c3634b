//! Any bytes through the envelope parser and, when accepted, the translator (logs, spans and
//! the metric aggregation): never a panic, one log record per event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mist_otel::mist::envelope::Envelope;
use mist_otel::signals::{Input, SignalsConfig, Translator};
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::parse(data) else { return };
    let attrs = BTreeMap::from([("mist.org.name".to_owned(), "fuzz".to_owned())]);
    let mut t = Translator::new(&SignalsConfig::default());
    let input =
        Input { endpoint: "default", endpoint_attributes: &attrs, received_at_ns: 1, envelope: &envelope };
    let out = t.translate(&input);
    let records: usize = out.logs.iter().flat_map(|rl| &rl.scope_logs).map(|sl| sl.log_records.len()).sum();
    assert_eq!(records, envelope.events.len());
    // Translating the same delivery twice must not panic either (correlation state, counters).
    let _ = t.translate(&input);
    let _ = t.collect_metrics(2);
});
