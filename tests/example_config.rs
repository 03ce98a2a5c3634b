//! The shipped example configuration loads and matches the defaults it documents.

use mist_otel::app::Config;
use mist_otel::config::Env;
use std::path::Path;

#[test]
fn example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.yaml");
    let env: Env = [("MIST_WEBHOOK_SECRET".to_string(), "example-secret".to_string())].into();
    let c = Config::load(Some(&path), &env).expect("config/example.yaml loads");
    let d = Config::default();
    assert_eq!(c.ingest.listen, d.ingest.listen);
    assert_eq!(c.ingest.max_body_bytes, d.ingest.max_body_bytes);
    assert_eq!(c.admin.listen, d.admin.listen);
    let (b, db) = (&c.buffer, &d.buffer);
    assert_eq!(
        (b.max_bytes, b.durable, b.fsync, b.fsync_interval, b.overflow, b.max_commit_batch),
        (db.max_bytes, db.durable, db.fsync, db.fsync_interval, db.overflow, db.max_commit_batch)
    );
    assert_eq!(c.ingest.secrets.len(), 1);
    // Without the secret variable the file names what is missing.
    let err = Config::load(Some(&path), &Env::new()).unwrap_err().to_string();
    assert!(err.contains("MIST_WEBHOOK_SECRET") && err.contains("ingest.secrets[0]"), "{err}");
}
