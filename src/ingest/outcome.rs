//! The handler's answer as a value: a delivery is [`Accepted`] or refused with a [`Refusal`],
//! and each refusal knows its status code, metric outcome, message and whether it asks for a
//! retry. The handler records and answers in one place ([`super::handler`]).

use super::signature::Rejection;
use crate::telemetry::ingest::Outcome;
use axum::http::StatusCode;
use bytes::Bytes;
use std::borrow::Cow;

/// A delivery that was verified, checked and stored.
#[derive(Debug)]
pub struct Accepted {
    /// The topic as sent (normalised).
    pub topic: String,
    /// The bounded topic label (a known topic or `other`).
    pub topic_label: &'static str,
    /// Events in the envelope.
    pub events: usize,
    /// The verified raw body.
    pub body: Bytes,
}

/// Why a delivery was refused.
#[derive(Debug)]
pub enum Refusal {
    /// The named endpoint is not configured.
    NoSuchEndpoint,
    /// The source address is over the per-source rate limit.
    RateLimited,
    /// The body is over `ingest.max_body_bytes` (the limit).
    TooLarge(usize),
    /// The body did not arrive within `ingest.body_timeout`.
    Timeout,
    /// The body arrived slower than `ingest.min_body_bytes_per_sec` (the minimum).
    TooSlow(u64),
    /// Bodies not yet authenticated hold `ingest.max_pending_body_bytes`; this one did not fit.
    Overloaded,
    /// The body could not be read (the connection failed mid-body).
    Unreadable,
    /// The signature is missing, malformed or wrong.
    Unauthorized(Rejection),
    /// Not JSON, or not the envelope shape (the message says which part).
    BadRequest(String),
    /// The buffer is at its cap (backpressure).
    Busy {
        /// Topic label of the refused delivery.
        topic_label: &'static str,
        /// The topic as sent.
        topic: String,
        /// Events in the refused delivery.
        events: usize,
    },
    /// The buffer could not store the delivery.
    StorageFailed {
        /// Topic label of the refused delivery.
        topic_label: &'static str,
        /// The topic as sent.
        topic: String,
        /// Events in the refused delivery.
        events: usize,
    },
}

/// How a refused request asks to be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// No `Retry-After` header.
    No,
    /// One second (rate limit: the bucket refills within it).
    OneSecond,
    /// The configured `ingest.retry_after_secs` (the buffer must drain first).
    Configured,
}

impl Refusal {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NoSuchEndpoint => StatusCode::NOT_FOUND,
            Refusal::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Timeout | Refusal::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            Refusal::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Unreadable | Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Refusal::Busy { .. } | Refusal::StorageFailed { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `outcome` label it is counted under; `None` for requests that are not counted (an
    /// unknown endpoint: its name is the sender's choice, so it must not become a label).
    pub fn outcome(&self) -> Option<Outcome> {
        Some(match self {
            Refusal::NoSuchEndpoint => return None,
            Refusal::RateLimited => Outcome::RateLimited,
            Refusal::TooLarge(_) => Outcome::TooLarge,
            Refusal::Timeout | Refusal::TooSlow(_) => Outcome::Timeout,
            Refusal::Overloaded => Outcome::Overloaded,
            Refusal::Unreadable | Refusal::StorageFailed { .. } => Outcome::Error,
            Refusal::Unauthorized(_) => Outcome::Unauthorized,
            Refusal::BadRequest(_) => Outcome::BadRequest,
            Refusal::Busy { .. } => Outcome::Busy,
        })
    }

    /// The message of the JSON answer (never contains a secret).
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Refusal::NoSuchEndpoint => "no such webhook endpoint".into(),
            Refusal::RateLimited => "too many requests from this address".into(),
            Refusal::TooLarge(max) => format!("body larger than {max} bytes").into(),
            Refusal::Timeout => "request body not received in time".into(),
            Refusal::TooSlow(min) => format!("request body slower than {min} bytes per second").into(),
            Refusal::Overloaded => "too many request bodies in progress, retry later".into(),
            Refusal::Unreadable => "could not read request body".into(),
            Refusal::Unauthorized(r) => unauthorized_message(*r).into(),
            Refusal::BadRequest(msg) => msg.clone().into(),
            Refusal::Busy { .. } => "buffer full, retry later".into(),
            Refusal::StorageFailed { .. } => "cannot store delivery, retry later".into(),
        }
    }

    /// The reason shown on the status page, or `None` when the request is not shown there.
    pub fn reason(&self) -> Option<Cow<'static, str>> {
        Some(match self {
            Refusal::NoSuchEndpoint | Refusal::Unreadable => return None,
            Refusal::RateLimited => "rate limited".into(),
            Refusal::TooLarge(_) => "body too large".into(),
            Refusal::Timeout => "body not received in time".into(),
            Refusal::TooSlow(_) => "body too slow".into(),
            Refusal::Overloaded => "pending body budget spent".into(),
            Refusal::Busy { .. } => "buffer full".into(),
            Refusal::StorageFailed { .. } => "storage error".into(),
            Refusal::Unauthorized(_) | Refusal::BadRequest(_) => self.message(),
        })
    }

    /// Whether the answer carries `Retry-After`.
    pub fn retry_after(&self) -> RetryAfter {
        match self {
            Refusal::RateLimited => RetryAfter::OneSecond,
            Refusal::Busy { .. } | Refusal::StorageFailed { .. } | Refusal::Overloaded => {
                RetryAfter::Configured
            }
            _ => RetryAfter::No,
        }
    }

    /// The topic label it is counted under (`unknown` when refused before the body was parsed).
    pub fn topic_label(&self) -> &'static str {
        match self {
            Refusal::Busy { topic_label, .. } | Refusal::StorageFailed { topic_label, .. } => topic_label,
            _ => "unknown",
        }
    }

    /// The topic and event count, when the body was parsed before the refusal.
    pub fn parsed(&self) -> Option<(&str, usize)> {
        match self {
            Refusal::Busy { topic, events, .. } | Refusal::StorageFailed { topic, events, .. } => {
                Some((topic, *events))
            }
            _ => None,
        }
    }
}

fn unauthorized_message(r: Rejection) -> &'static str {
    match r {
        Rejection::Missing => "missing X-Mist-Signature-v2 header",
        Rejection::Malformed => "malformed signature header",
        Rejection::Mismatch => "signature does not match",
        Rejection::Sha1Disabled => "X-Mist-Signature (SHA-1) is not enabled; send X-Mist-Signature-v2",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_knows_its_answer() {
        let busy = Refusal::Busy { topic_label: "alarms", topic: "alarms".into(), events: 2 };
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.outcome(), Some(Outcome::Busy));
        assert_eq!(busy.retry_after(), RetryAfter::Configured);
        assert_eq!(busy.topic_label(), "alarms");
        assert_eq!(busy.parsed(), Some(("alarms", 2)));
        let rl = Refusal::RateLimited;
        assert_eq!((rl.status().as_u16(), rl.retry_after()), (429, RetryAfter::OneSecond));
        assert_eq!(rl.topic_label(), "unknown");
        let big = Refusal::TooLarge(10);
        assert_eq!(big.message(), "body larger than 10 bytes");
        assert_eq!(big.outcome().map(Outcome::as_str), Some("too_large"));
        let sig = Refusal::Unauthorized(Rejection::Mismatch);
        assert_eq!(sig.reason().as_deref(), Some("signature does not match"));
        assert_eq!(Refusal::NoSuchEndpoint.outcome(), None);
        assert_eq!(Refusal::Unreadable.reason(), None);
        let over = Refusal::Overloaded;
        assert_eq!((over.status().as_u16(), over.retry_after()), (503, RetryAfter::Configured));
        assert_eq!(over.outcome().map(Outcome::as_str), Some("overloaded"));
        let slow = Refusal::TooSlow(1024);
        assert_eq!((slow.status().as_u16(), slow.outcome()), (408, Some(Outcome::Timeout)));
        assert_eq!(slow.message(), "request body slower than 1024 bytes per second");
    }
}
