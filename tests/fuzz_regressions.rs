//! Replays every input under tests/fuzz_regressions/ (crashes the fuzzers found, and hand-made
//! hostile inputs of the same kinds) through what the fuzz targets exercise: the envelope
//! parser, the handler's validation pass, and the translator. None may panic, and the
//! validation pass must give the parser's verdict.

use mist_otel::mist::envelope::{Envelope, Summary};
use mist_otel::signals::{Input, SignalsConfig, Translator};
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn every_recorded_input_is_handled_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no regression inputs in {}", dir.display());
    let attrs = BTreeMap::new();
    let mut translator = Translator::new(&SignalsConfig::default());
    let mut accepted = 0;
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let parsed = Envelope::parse(&data);
        let validated = Envelope::validate(&data);
        assert_eq!(validated.as_ref().err(), parsed.as_ref().err(), "{}", f.display());
        let Ok(envelope) = parsed else { continue };
        assert_eq!(
            validated.ok(),
            Some(Summary { topic: envelope.topic.clone(), events: envelope.events.len() }),
            "{}",
            f.display()
        );
        let input = Input {
            endpoint: "default",
            endpoint_attributes: &attrs,
            received_at_ns: 1,
            envelope: &envelope,
        };
        let out = translator.translate(&input);
        let records: usize = out.logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum();
        assert_eq!(records, envelope.events.len(), "{}", f.display());
        accepted += 1;
    }
    let _ = translator.collect_metrics(2);
    // The set mixes accepted and refused bodies on purpose.
    assert!(accepted > 0 && accepted < files.len(), "{accepted} of {}", files.len());
}
