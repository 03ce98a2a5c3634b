//! Mist's webhook signatures: `X-Mist-Signature-v2` (HMAC-SHA256, lowercase hex) and the
//! legacy `X-Mist-Signature` (HMAC-SHA1), both over the raw body and compared in constant time.

use crate::secret::Secret;
use hmac::{Hmac, KeyInit, Mac};

/// Header carrying the HMAC-SHA256 signature.
pub const HEADER_V2: &str = "x-mist-signature-v2";
/// Header carrying the legacy HMAC-SHA1 signature.
pub const HEADER_V1: &str = "x-mist-signature";

/// The outcome of checking a delivery's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The v2 signature matched the secret at this index.
    V2(usize),
    /// The SHA-1 signature matched the secret at this index (v2 absent, SHA-1 allowed).
    V1(usize),
    /// No secret configured and unsigned deliveries allowed.
    Unsigned,
    /// Rejected, with the reason (a metric label; never contains the secret).
    Rejected(Rejection),
}

/// Why a signature was rejected: the `reason` label of the signature-failure metric, declared
/// with the listener's self-metrics.
pub use crate::telemetry::ingest::SigFailure as Rejection;

/// Checks one delivery. `v2`/`v1` are the raw header values if present.
///
/// If the v2 header is present it alone decides: a wrong v2 never falls back to SHA-1.
pub fn verify(
    secrets: &[Secret],
    allow_sha1: bool,
    allow_unsigned: bool,
    body: &[u8],
    v2: Option<&[u8]>,
    v1: Option<&[u8]>,
) -> Verdict {
    if secrets.is_empty() {
        return if allow_unsigned { Verdict::Unsigned } else { Verdict::Rejected(Rejection::Mismatch) };
    }
    if let Some(sig) = v2 {
        return match decode_hex::<32>(sig) {
            None => Verdict::Rejected(Rejection::Malformed),
            Some(expected) => match find::<Hmac<sha2::Sha256>>(secrets, body, &expected) {
                Some(i) => Verdict::V2(i),
                None => Verdict::Rejected(Rejection::Mismatch),
            },
        };
    }
    match v1 {
        None => Verdict::Rejected(Rejection::Missing),
        Some(_) if !allow_sha1 => Verdict::Rejected(Rejection::Sha1Disabled),
        Some(sig) => match decode_hex::<20>(sig) {
            None => Verdict::Rejected(Rejection::Malformed),
            Some(expected) => match find::<Hmac<sha1::Sha1>>(secrets, body, &expected) {
                Some(i) => Verdict::V1(i),
                None => Verdict::Rejected(Rejection::Mismatch),
            },
        },
    }
}

/// Index of the first secret whose MAC equals `expected`. Every secret is checked so the time
/// taken does not reveal which one matched.
fn find<M: Mac + KeyInit>(secrets: &[Secret], body: &[u8], expected: &[u8]) -> Option<usize> {
    let mut found = None;
    for (i, s) in secrets.iter().enumerate() {
        let mut mac = <M as KeyInit>::new_from_slice(s.expose().as_bytes()).ok()?;
        mac.update(body);
        // verify_slice compares in constant time.
        if mac.verify_slice(expected).is_ok() && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// Decodes hex (either case; Mist sends lowercase) of exactly `N` bytes, tolerating surrounding
/// whitespace and a `sha256=` style prefix some proxies add.
fn decode_hex<const N: usize>(raw: &[u8]) -> Option<[u8; N]> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    let s = s.rsplit_once('=').map_or(s, |(_, h)| h);
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Computes the v2 signature Mist would send for `body` (used by `webhook send` and tests).
pub fn sign_v2(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Computes the legacy SHA-1 signature for `body`.
pub fn sign_v1(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(s: &[&str]) -> Vec<Secret> {
        s.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2.
        let sig = sign_v2("Jefe", b"what do ya want for nothing?");
        assert_eq!(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn v2_rotation_and_no_fallback() {
        let s = secrets(&["old", "new"]);
        let body = b"{}";
        let v2 = sign_v2("new", body);
        assert_eq!(verify(&s, false, false, body, Some(v2.as_bytes()), None), Verdict::V2(1));
        let v1 = sign_v1("old", body);
        // A wrong v2 decides even with a valid SHA-1 header and SHA-1 enabled.
        let bad = sign_v2("other", body);
        assert_eq!(
            verify(&s, true, false, body, Some(bad.as_bytes()), Some(v1.as_bytes())),
            Verdict::Rejected(Rejection::Mismatch)
        );
        assert_eq!(verify(&s, true, false, body, None, Some(v1.as_bytes())), Verdict::V1(0));
        assert_eq!(
            verify(&s, false, false, body, None, Some(v1.as_bytes())),
            Verdict::Rejected(Rejection::Sha1Disabled)
        );
        assert_eq!(verify(&s, false, false, body, None, None), Verdict::Rejected(Rejection::Missing));
        assert_eq!(
            verify(&s, false, false, body, Some(b"zz"), None),
            Verdict::Rejected(Rejection::Malformed)
        );
        assert_eq!(verify(&[], false, true, body, None, None), Verdict::Unsigned);
        assert_eq!(verify(&[], false, false, body, None, None), Verdict::Rejected(Rejection::Mismatch));
    }

    #[test]
    fn body_change_breaks_signature() {
        let s = secrets(&["k"]);
        let v2 = sign_v2("k", b"{\"a\":1}");
        assert_eq!(
            verify(&s, false, false, b"{\"a\":2}", Some(v2.as_bytes()), None),
            Verdict::Rejected(Rejection::Mismatch)
        );
    }
}
