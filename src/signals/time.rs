//! Event times from untrusted numbers.
//!
//! Mist documents its times as float seconds since the epoch, but a sender (or a proxy, or a
//! test tool) may send milliseconds, microseconds or nanoseconds, and hostile bodies send
//! anything. Every event time the translator uses (log records, span starts and ends, gauge
//! points, and so the order in which a device's up/down state is kept) goes through [`read`]:
//!
//! - the unit is recognised by magnitude: below [`MILLIS_FROM`] seconds, then milliseconds,
//!   microseconds from [`MICROS_FROM`], nanoseconds from [`NANOS_FROM`] (seconds that large
//!   would lie past the year 5000);
//! - the result must lie in the sane window: not before 2000-01-01 ([`EARLIEST_NS`]) and not more
//!   than [`FUTURE_SLACK_NS`] after receipt. Outside it the value is no time at all, and the
//!   caller falls back to the next time field, then to receipt;
//! - nothing saturates: a value that does not fit is rejected, never clamped to `u64::MAX`.
//!
//! Zero, negative, NaN and infinite values are "no time" as before (not counted as corrected).

/// Raw values from here on are read as milliseconds (1e11 s is the year 5138).
pub const MILLIS_FROM: f64 = 1e11;
/// Raw values from here on are read as microseconds.
pub const MICROS_FROM: f64 = 1e14;
/// Raw values from here on are read as nanoseconds.
pub const NANOS_FROM: f64 = 1e17;
/// 2000-01-01T00:00:00Z, ns: no Mist event is older.
pub const EARLIEST_NS: u64 = 946_684_800_000_000_000;
/// How far after receipt an event time may lie (clock skew), ns: one day.
pub const FUTURE_SLACK_NS: u64 = 86_400_000_000_000;

/// The unit a raw time value was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds (what Mist documents).
    Seconds,
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
    /// Nanoseconds.
    Nanos,
}

impl Unit {
    /// The unit of a positive raw value, by its magnitude.
    pub fn of(raw: f64) -> Unit {
        if raw >= NANOS_FROM {
            Unit::Nanos
        } else if raw >= MICROS_FROM {
            Unit::Micros
        } else if raw >= MILLIS_FROM {
            Unit::Millis
        } else {
            Unit::Seconds
        }
    }

    /// Microseconds per one of this unit.
    fn micros(self) -> f64 {
        match self {
            Unit::Seconds => 1e6,
            Unit::Millis => 1e3,
            Unit::Micros => 1.0,
            Unit::Nanos => 1e-3,
        }
    }
}

/// What [`read`] made of one raw time value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// No time: absent, zero, negative, NaN or infinite.
    Absent,
    /// A time in the sane window, ns, and the unit it was sent in.
    Time(u64, Unit),
    /// A number outside the sane window (or too large for any unit): replaced by the caller.
    OutOfWindow,
}

impl Reading {
    /// The time, ns, if there is a usable one.
    pub fn ns(self) -> Option<u64> {
        match self {
            Reading::Time(ns, _) => Some(ns),
            _ => None,
        }
    }

    /// Whether the value needed correcting: sent in another unit than seconds, or replaced.
    pub fn corrected(self) -> bool {
        matches!(self, Reading::OutOfWindow | Reading::Time(_, Unit::Millis | Unit::Micros | Unit::Nanos))
    }
}

/// Reads a raw event time (normally float seconds) relative to the receipt time, ns.
pub fn read(raw: f64, received_ns: u64) -> Reading {
    if !raw.is_finite() || raw <= 0.0 {
        return Reading::Absent;
    }
    let unit = Unit::of(raw);
    match to_ns(raw, unit.micros()) {
        Some(ns) if (EARLIEST_NS..=received_ns.saturating_add(FUTURE_SLACK_NS)).contains(&ns) => {
            Reading::Time(ns, unit)
        }
        _ => Reading::OutOfWindow,
    }
}

/// The first usable time among `candidates` (in order; `None` entries are skipped), and whether
/// any value read on the way needed correcting (see [`Reading::corrected`]).
pub fn first(candidates: impl IntoIterator<Item = Option<f64>>, received_ns: u64) -> (Option<u64>, bool) {
    let mut corrected = false;
    for r in candidates.into_iter().flatten().map(|raw| read(raw, received_ns)) {
        corrected |= r.corrected();
        if let Some(ns) = r.ns() {
            return (Some(ns), corrected);
        }
    }
    (None, corrected)
}

/// Float seconds → integer nanoseconds, in f64 (never f32), rounded to the microsecond Mist
/// sends so 1691512031.358188 becomes exactly 1691512031358188000. No time (0) for zero,
/// negative, NaN, infinite or unrepresentable values; no unit detection and no window (see
/// [`read`] for event times).
pub fn secs_to_ns(secs: f64) -> u64 {
    if !secs.is_finite() || secs <= 0.0 {
        return 0;
    }
    to_ns(secs, 1e6).unwrap_or(0)
}

/// `raw` units of `micros` µs each → ns rounded to the µs; `None` when it does not fit a `u64`.
fn to_ns(raw: f64, micros: f64) -> Option<u64> {
    let us = (raw * micros).round();
    // u64::MAX / 1000 as f64 rounds up, so `<` keeps the multiplication below in range.
    (us >= 0.0 && us < (u64::MAX / 1000) as f64).then(|| (us as u64) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-08-08T16:27:11.358188Z.
    const T_NS: u64 = 1_691_512_031_358_188_000;
    /// Receipt a minute later.
    const RX: u64 = T_NS + 60_000_000_000;

    #[test]
    fn seconds_unchanged() {
        assert_eq!(read(1691512031.358188, RX), Reading::Time(T_NS, Unit::Seconds));
        assert_eq!(secs_to_ns(1691512031.358188), T_NS);
        assert!(!read(1691512031.358188, RX).corrected());
    }

    #[test]
    fn milliseconds_micro_and_nanoseconds_are_recognised() {
        assert_eq!(read(1691512031358.188, RX), Reading::Time(T_NS, Unit::Millis));
        assert_eq!(read(1691512031358188.0, RX), Reading::Time(T_NS, Unit::Micros));
        // f64 holds about 16 digits: nanoseconds come back to the microsecond.
        assert_eq!(read(1691512031358188000.0, RX), Reading::Time(T_NS, Unit::Nanos));
        assert!(read(1691512031358.188, RX).corrected());
    }

    #[test]
    fn out_of_window_values_are_replaced_never_saturated() {
        // 9999-12-31T23:59:59Z in seconds reads as milliseconds: 1978, before 2000.
        assert_eq!(read(253402300799.0, RX), Reading::OutOfWindow);
        assert_eq!(read(1e300, RX), Reading::OutOfWindow);
        assert_eq!(read(1.8e19, RX), Reading::OutOfWindow);
        // 1999-12-31 and two days after receipt.
        assert_eq!(read(946_684_799.0, RX), Reading::OutOfWindow);
        assert_eq!(read((RX / 1_000_000_000 + 2 * 86_400) as f64, RX), Reading::OutOfWindow);
        assert!(read(1e300, RX).corrected());
        assert_eq!(secs_to_ns(1e300), 0);
        assert_eq!(secs_to_ns(1.8e19), 0);
    }

    #[test]
    fn clock_skew_within_a_day_is_kept() {
        let ahead = (RX / 1_000_000_000 + 3_600) as f64;
        assert_eq!(read(ahead, RX).ns(), Some(RX / 1_000_000_000 * 1_000_000_000 + 3_600_000_000_000));
    }

    #[test]
    fn zero_negative_and_non_finite_are_no_time() {
        for raw in [0.0, -5.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(read(raw, RX), Reading::Absent, "{raw}");
            assert!(!read(raw, RX).corrected());
            assert_eq!(secs_to_ns(raw), 0, "{raw}");
        }
    }
}
