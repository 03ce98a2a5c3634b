//! The page itself: server-rendered HTML with its style and a few lines of vanilla JS for the
//! live tail. Every piece of event or request text goes through [`escape`].

use super::Snapshot;
use super::html::{clock, escape, judged, table};
use std::fmt::Write as _;

/// The page's style sheet.
const STYLE: &str = include_str!("page.css");
/// Adds each streamed event to the live tail as text (never as HTML), newest on top.
const SCRIPT: &str = include_str!("page.js");

/// Renders the page. Every piece of event or request text goes through [`escape`].
pub fn render_page(s: &Snapshot) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mist-otel status</title>\
         <style>{STYLE}</style></head><body><h1>mist-otel status</h1>\
         <p class=\"muted\">version {} · up {} s · {} other live viewer(s) · times in UTC</p>",
        escape(s.version),
        s.uptime_secs,
        s.live_viewers
    );
    topics(&mut h, s);
    deliveries(&mut h, s);
    super::health::render(&mut h, &s.health);
    h.push_str("<h2>Live tail</h2><p class=\"muted\" id=\"live\">newest first; updates as events arrive</p><ul id=\"tail\">");
    for e in &s.events {
        let _ = write!(h, "<li>{} {} {}</li>", clock(e.received_at_ms), escape(&e.topic), escape(&e.summary));
    }
    let _ = write!(h, "</ul><script>{SCRIPT}</script></body></html>");
    h
}

/// Totals per topic since start.
fn topics(h: &mut String, s: &Snapshot) {
    h.push_str("<h2>Deliveries by topic</h2><p class=\"muted\">totals since start, as of page load</p>");
    if s.topics.is_empty() {
        h.push_str("<p id=\"no-deliveries\">No deliveries yet.</p>");
        return;
    }
    let head = ["topic", "accepted", "events", "rejected", "last outcome", "last seen"];
    let rows = s.topics.iter().map(|(topic, t)| {
        vec![
            topic.into(),
            t.accepted.into(),
            t.events.into(),
            t.rejected.into(),
            judged(&t.last_outcome, t.last_outcome == "verified"),
            clock(t.last_at_ms).into(),
        ]
    });
    table(h, "topics", &head, rows);
}

/// The most recent requests, newest first.
fn deliveries(h: &mut String, s: &Snapshot) {
    h.push_str("<h2>Recent deliveries</h2>");
    if s.deliveries.is_empty() {
        return;
    }
    let head = ["time", "endpoint", "topic", "status", "events", "outcome"];
    let rows = s.deliveries.iter().map(|d| {
        vec![
            clock(d.at_ms).into(),
            (&d.endpoint).into(),
            d.topic.as_deref().unwrap_or("—").into(),
            d.status.into(),
            d.events.into(),
            judged(&d.outcome, d.outcome == "verified"),
        ]
    });
    table(h, "deliveries", &head, rows);
}
