//! The page itself: server-rendered HTML with its style and a few lines of vanilla JS for the
//! live tail. Every piece of event or request text goes through [`escape`].

use super::Snapshot;
use std::fmt::Write as _;

/// The page's style sheet.
const STYLE: &str = include_str!("page.css");
/// Adds each streamed event to the live tail as text (never as HTML), newest on top.
const SCRIPT: &str = include_str!("page.js");

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `HH:MM:SS` UTC of a millisecond epoch time (the page is for "what just happened").
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

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

    h.push_str("<h2>Deliveries by topic</h2><p class=\"muted\">totals since start, as of page load</p>");
    if s.topics.is_empty() {
        h.push_str("<p id=\"no-deliveries\">No deliveries yet.</p>");
    } else {
        h.push_str(
            "<table id=\"topics\"><tr><th>topic</th><th>accepted</th><th>events</th><th>rejected</th>\
             <th>last outcome</th><th>last seen</th></tr>",
        );
        for (topic, t) in &s.topics {
            let class = if t.last_outcome == "verified" { "ok" } else { "bad" };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
                escape(topic),
                t.accepted,
                t.events,
                t.rejected,
                escape(&t.last_outcome),
                clock(t.last_at_ms)
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Recent deliveries</h2>");
    if !s.deliveries.is_empty() {
        h.push_str(
            "<table id=\"deliveries\"><tr><th>time</th><th>endpoint</th><th>topic</th><th>status</th>\
             <th>events</th><th>outcome</th></tr>",
        );
        for d in &s.deliveries {
            let class = if d.outcome == "verified" { "ok" } else { "bad" };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
                clock(d.at_ms),
                escape(&d.endpoint),
                escape(d.topic.as_deref().unwrap_or("—")),
                d.status,
                d.events,
                escape(&d.outcome)
            );
        }
        h.push_str("</table>");
    }

    if !s.poller_sites.is_empty() {
        h.push_str(
            "<h2>Poller sites</h2><table id=\"poller-sites\"><tr><th>site</th><th>channel</th><th>stream</th></tr>",
        );
        for site in &s.poller_sites {
            let (class, state) =
                if site.subscribed { ("ok", "subscribed") } else { ("bad", "not connected") };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{state}</td></tr>",
                escape(&site.site_id),
                escape(&site.channel)
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Health</h2>");
    for (name, health) in &s.health {
        let _ = write!(h, "<h3>{}</h3>", escape(name));
        if !health.enabled {
            let _ = write!(h, "<p class=\"muted\" id=\"{0}-health\">{0}: not enabled</p>", escape(name));
            continue;
        }
        let _ = write!(
            h,
            "<table id=\"{}-health\"><tr><th>metric</th><th>labels</th><th>value</th></tr>",
            escape(name)
        );
        for smp in &health.samples {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&smp.name),
                escape(&smp.labels),
                escape(&smp.value)
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Live tail</h2><p class=\"muted\" id=\"live\">newest first; updates as events arrive</p><ul id=\"tail\">");
    for e in &s.events {
        let _ = write!(h, "<li>{} {} {}</li>", clock(e.received_at_ms), escape(&e.topic), escape(&e.summary));
    }
    let _ = write!(h, "</ul><script>{SCRIPT}</script></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<b a=\"1\">&'"), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
    }
}
