//! The page's health section, written from the components' typed snapshots.

use super::html::{Cell, clock, judged, table};
use crate::admin::health::{Component, HealthSnapshot};
use crate::telemetry::buffer::{BufferHealth, StorageError};
use crate::telemetry::export::{ExportHealth, SignalHealth};
use crate::telemetry::poller::PollerHealth;
use std::fmt::Write as _;

/// Writes the health of export, buffer and poller.
pub(super) fn render(h: &mut String, s: &HealthSnapshot) {
    h.push_str("<h2>Health</h2>");
    section(h, "export", &s.export, export);
    section(h, "buffer", &s.buffer, buffer);
    section(h, "poller", &s.poller, poller);
}

/// A component's heading, then its table, or a note that it is off.
fn section<T>(h: &mut String, name: &str, c: &Component<T>, write: fn(&mut String, &T)) {
    let _ = write!(h, "<h3>{name}</h3>");
    match &c.state {
        Some(state) if c.enabled => write(h, state),
        _ => {
            let _ = write!(h, "<p class=\"muted\" id=\"{name}-health\">{name}: not enabled</p>");
        }
    }
}

/// `HH:MM:SS` of a Unix time in seconds, or `never`.
fn at(unix_secs: Option<u64>) -> String {
    unix_secs.map_or_else(|| "never".to_owned(), |s| clock(s.saturating_mul(1000)))
}

fn export(h: &mut String, e: &ExportHealth) {
    let head = ["signal", "sent", "dropped", "last success", "last error", "retrying"];
    let row = |name: &str, s: &SignalHealth| -> Vec<Cell> {
        let error = s.last_error.as_ref().map(|e| format!("{} at {}", e.reason, at(Some(e.at_unix))));
        vec![
            name.into(),
            s.items_sent.into(),
            judged(s.items_dropped, s.items_dropped == 0),
            at(s.last_success_unix).into(),
            judged(error.as_deref().unwrap_or("none"), error.is_none()),
            judged(s.retrying, s.retrying == 0),
        ]
    };
    let rows = [row("logs", &e.logs), row("metrics", &e.metrics), row("traces", &e.traces)];
    table(h, "export-health", &head, rows);
    let _ = write!(
        h,
        "<p>Deliveries dropped before translation (unreadable, translator failure): {}</p>",
        e.deliveries_dropped
    );
    let d = &e.dead_letters;
    let _ = write!(
        h,
        "<p>Dead letters (refused for good, kept for <code>mist-otel deadletter replay</code>): {} requests, {} bytes; {} deleted by the size cap</p>",
        d.requests, d.bytes, d.dropped
    );
}

fn buffer(h: &mut String, b: &BufferHealth) {
    let mode = match b.fsync {
        Some(fsync) => format!("durable (fsync: {fsync})"),
        None => "memory only (lost on restart)".to_owned(),
    };
    let fill = if b.max_bytes == 0 { 0.0 } else { b.bytes as f64 * 100.0 / b.max_bytes as f64 };
    let oldest = b.oldest_age_seconds.map_or_else(|| "none".to_owned(), |s| format!("{s:.0} s"));
    let rows: Vec<Vec<Cell>> = vec![
        vec!["mode".into(), mode.into()],
        vec!["deliveries held".into(), b.deliveries.into()],
        vec!["bytes held".into(), format!("{} of {} ({fill:.1} %)", b.bytes, b.max_bytes).into()],
        vec!["oldest undelivered".into(), oldest.into()],
        vec!["dropped".into(), judged(b.dropped, b.dropped == 0)],
        vec!["accepting".into(), judged(if b.has_room { "yes" } else { "no: near its cap" }, b.has_room)],
        vec!["storage".into(), storage(b.storage_error.as_ref())],
    ];
    table(h, "buffer-health", &[], rows);
}

/// The buffer's storage: ok, or the last write error and when.
fn storage(e: Option<&StorageError>) -> Cell {
    match e {
        None => judged("ok", true),
        Some(e) => judged(format!("failing: {} at {}", e.error, at(Some(e.at_unix))), false),
    }
}

fn poller(h: &mut String, p: &PollerHealth) {
    let error = p
        .last_error
        .as_ref()
        .map(|e| format!("{}: {} at {}", e.what.as_str(), e.error, at(Some(e.at_unix_secs))));
    let rows: Vec<Vec<Cell>> = vec![
        vec!["sites followed".into(), p.sites_followed.into()],
        vec![
            "devices / clients tracked".into(),
            format!("{} / {}", p.tracked_devices, p.tracked_clients).into(),
        ],
        vec!["sites refreshed".into(), at(p.last_sites_refresh_unix_secs).into()],
        vec!["org figures refreshed".into(), at(p.last_org_refresh_unix_secs).into()],
        vec!["last refresh error".into(), judged(error.as_deref().unwrap_or("none"), error.is_none())],
        vec!["API calls (429s)".into(), format!("{} ({})", p.api_calls, p.api_rate_limited).into()],
        vec!["WebSocket connections".into(), p.ws_connections_up.into()],
    ];
    table(h, "poller-health", &[], rows);
    if p.sites.is_empty() {
        return;
    }
    h.push_str("<h3>Poller sites</h3>");
    let rows = p.sites.iter().map(|site| {
        let state = if site.subscribed { "subscribed" } else { "not connected" };
        vec![(&site.site_id).into(), site.channel.as_str().into(), judged(state, site.subscribed)]
    });
    table(h, "poller-sites", &["site", "channel", "stream"], rows);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::poller::{ChannelKind, SiteHealth};

    fn poller_health(sites: Vec<SiteHealth>) -> PollerHealth {
        PollerHealth {
            sites,
            sites_followed: 2,
            tracked_devices: 0,
            tracked_clients: 0,
            last_sites_refresh_unix_secs: None,
            last_org_refresh_unix_secs: None,
            last_error: None,
            refresh_errors: 0,
            api_calls: 0,
            api_rate_limited: 0,
            api_budget_remaining: 0.0,
            ws_connections_up: 0,
            ws_subscriptions: 0,
        }
    }

    #[test]
    fn poller_sites_from_the_typed_snapshot() {
        let sites = vec![
            SiteHealth { site_id: "s-1".into(), channel: ChannelKind::Devices, subscribed: true },
            SiteHealth { site_id: "s\"2".into(), channel: ChannelKind::Clients, subscribed: false },
        ];
        let mut page = String::new();
        poller(&mut page, &poller_health(sites));
        assert!(page.contains("<td>s-1</td><td>devices</td><td class=\"ok\">subscribed</td>"), "{page}");
        assert!(
            page.contains("<td>s&quot;2</td><td>clients</td><td class=\"bad\">not connected</td>"),
            "{page}"
        );
    }

    #[test]
    fn the_buffer_row_shows_a_failing_storage() {
        let mut b = BufferHealth {
            deliveries: 0,
            bytes: 0,
            max_bytes: 100,
            oldest_age_seconds: None,
            mode: crate::telemetry::buffer::BufferMode::Durable,
            fsync: Some("interval"),
            dropped: 0,
            has_room: true,
            storage_error: None,
        };
        let mut page = String::new();
        buffer(&mut page, &b);
        assert!(page.contains("<td>storage</td><td class=\"ok\">ok</td>"), "{page}");
        let error = "No space left on device (os error 28)".to_owned();
        b.storage_error = Some(StorageError { error, at_unix: 0 });
        page.clear();
        buffer(&mut page, &b);
        let want = "<td>storage</td><td class=\"bad\">failing: No space left on device (os error 28) at ";
        assert!(page.contains(want), "{page}");
    }

    #[test]
    fn a_component_that_is_off_says_so() {
        let mut page = String::new();
        let off: Component<PollerHealth> = Component { enabled: false, state: None };
        section(&mut page, "poller", &off, poller);
        assert!(page.contains("<p class=\"muted\" id=\"poller-health\">poller: not enabled</p>"), "{page}");
    }
}
