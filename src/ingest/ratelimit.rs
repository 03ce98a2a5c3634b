//! Per-source rate limit: a token bucket per client IP, checked before the body is read so a
//! flood costs the server almost nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Most tracked sources; past this, full buckets are forgotten first.
const MAX_SOURCES: usize = 65_536;

/// A keyed token bucket: `rate` requests per second with a burst of `rate` (at least 1).
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_second` requests per second per source.
    pub fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        Self { rate, burst: rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `ip` at `now`; false when the source is over its rate.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = source_key(ip);
        let Ok(mut map) = self.buckets.lock() else { return true };
        if map.len() >= MAX_SOURCES && !map.contains_key(&ip) {
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, (tokens, last)| {
                *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst
            });
            if map.len() >= MAX_SOURCES {
                // Still full of active sources (a spread-out flood): start over rather than
                // refuse newcomers — a new Mist egress address must never be locked out, and
                // the map stays bounded. The scan above then runs at most once per MAX_SOURCES
                // new sources.
                map.clear();
            }
        }
        let entry = map.entry(ip).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(entry.1).as_secs_f64();
        entry.0 = (entry.0 + elapsed * self.rate).min(self.burst);
        entry.1 = now;
        if entry.0 >= 1.0 {
            entry.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The bucket key: the address for IPv4, its /64 network for IPv6 (one host usually owns a
/// whole /64, so per-address keys would let it mint sources at will).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(seg[0], seg[1], seg[2], seg[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_per_source() {
        let rl = RateLimiter::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t = Instant::now();
        assert!(rl.allow(a, t));
        assert!(rl.allow(a, t));
        assert!(!rl.allow(a, t), "burst of 2 used up");
        assert!(rl.allow(b, t), "other sources unaffected");
        assert!(rl.allow(a, t + Duration::from_millis(600)), "refilled after 0.5 s at 2/s");
    }

    #[test]
    fn ipv6_hosts_share_their_64_and_a_full_map_never_locks_out() {
        let rl = RateLimiter::new(1);
        let t = Instant::now();
        assert!(rl.allow("2001:db8::1".parse().unwrap(), t));
        assert!(!rl.allow("2001:db8::2".parse().unwrap(), t), "same /64, same bucket");
        for i in 0..(MAX_SOURCES as u32 + 10) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(rl.allow(ip, t), "new source {ip} refused");
        }
        assert!(rl.buckets.lock().unwrap().len() <= MAX_SOURCES);
    }
}
