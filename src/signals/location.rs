//! The location family (`location*`, `zone`, `rssizone`, raw RSSI, SDK scans, `ping`) and
//! unknown topics: logs only. They are high-volume position samples; a metric per object
//! would be unbounded cardinality, and their fields are kept as attributes.

use super::attrs::{self, non_empty, opt};
use super::{EventOut, str_field};
use crate::mist::events::Location;
use serde_json::{Map, Value};

/// A location-family event: an INFO log with map and zone ids as attributes.
pub fn location(topic: &str, e: &Location, out: &mut EventOut) {
    opt(&mut out.attrs, attrs::MAP_ID, non_empty(&e.map_id));
    opt(&mut out.attrs, attrs::ZONE_ID, non_empty(&e.zone_id));
    out.consumed = &["map_id", "zone_id"];
    let who = non_empty(&e.mac)
        .or(non_empty(&e.name))
        .or(non_empty(&e.client_id))
        .map(String::as_str)
        .unwrap_or("?");
    out.body = match (non_empty(&e.trigger), e.x, e.y) {
        (Some(t), _, _) => {
            let zone = non_empty(&e.zone_id).or(non_empty(&e.rssizone_id)).map(String::as_str);
            format!("{topic}: {who} {t} zone {}", zone.unwrap_or("?"))
        }
        (None, Some(x), Some(y)) => {
            format!("{topic}: {who} at ({x}, {y}) on map {}", e.map_id.as_deref().unwrap_or("?"))
        }
        _ => match e.rssi {
            Some(r) => format!("{topic}: {who} heard at {r} dBm"),
            None => format!("{topic}: {who}"),
        },
    };
}

/// A topic without a typed form: an INFO log whose body is the event's `message`/`text`
/// when it has one.
pub fn generic(topic: &str, ev: &Map<String, Value>, out: &mut EventOut) {
    if let Some(m) = str_field(ev, "message").or_else(|| str_field(ev, "text")) {
        out.body = m;
    } else {
        out.body = format!("{topic} event");
    }
}
