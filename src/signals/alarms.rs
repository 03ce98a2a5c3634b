//! `alarms` and `audits`.

use super::attrs::{self, kv};
use super::logs::Severity;
use super::metrics;
use super::{Cx, EventOut};
use crate::mist::events::{Alarm, Audit};

/// Mist's alarm definitions (`GET /const/alarm_defs`): type → (group, severity). Webhook
/// deliveries often omit `group` and `severity`; this table fills them in. Unknown types
/// keep what the event says, else `unknown`.
const ALARM_DEFS: &[(&str, &str, &str)] = &[
    ("adhoc_network", "security", "warn"),
    ("air_magnet_scan", "security", "info"),
    ("ap_bad_cable", "marvis", "critical"),
    ("ap_offline", "marvis", "critical"),
    ("arp_failure", "marvis", "critical"),
    ("authentication_failure", "marvis", "critical"),
    ("bad_cable", "marvis", "critical"),
    ("bad_wan_uplink", "marvis", "critical"),
    ("beacon_flood", "security", "warn"),
    ("bssid_spoofing", "security", "info"),
    ("device_down", "infrastructure", "warn"),
    ("device_reconnected", "infrastructure", "info"),
    ("device_restarted", "infrastructure", "info"),
    ("dhcp_failure", "marvis", "critical"),
    ("disassociation_flood", "security", "warn"),
    ("dns_failure", "marvis", "critical"),
    ("eap_dictionary_attack", "security", "warn"),
    ("eap_failure_injection", "security", "warn"),
    ("eap_handshake_flood", "security", "info"),
    ("eap_spoofed_success", "security", "warn"),
    ("eapol_logoff_attack", "security", "warn"),
    ("essid_jack", "security", "warn"),
    ("excessive_client", "security", "warn"),
    ("excessive_eapol_start", "security", "warn"),
    ("gateway_down", "infrastructure", "warn"),
    ("gateway_reconnected", "infrastructure", "info"),
    ("gw_bad_cable", "marvis", "critical"),
    ("gw_dhcp_pool_exhausted", "infrastructure", "warn"),
    ("gw_negotiation_mismatch", "marvis", "critical"),
    ("health_check_failed", "marvis", "critical"),
    ("honeypot_ssid", "security", "info"),
    ("infra_arp_failure", "infrastructure", "critical"),
    ("infra_arp_success", "infrastructure", "info"),
    ("infra_dhcp_failure", "infrastructure", "critical"),
    ("infra_dhcp_success", "infrastructure", "info"),
    ("infra_dns_failure", "infrastructure", "critical"),
    ("infra_dns_success", "infrastructure", "info"),
    ("insufficient_capacity", "marvis", "critical"),
    ("insufficient_coverage", "marvis", "critical"),
    ("krack_attack", "security", "warn"),
    ("loop_detected_by_ap", "infrastructure", "warn"),
    ("missing_vlan", "marvis", "critical"),
    ("monkey_jack", "security", "warn"),
    ("negotiation_mismatch", "marvis", "critical"),
    ("non_compliant", "marvis", "critical"),
    ("out_of_sequence", "security", "warn"),
    ("port_flap", "marvis", "warn"),
    ("repeated_auth_failures", "security", "info"),
    ("rogue_ap", "security", "critical"),
    ("rogue_client", "security", "critical"),
    ("secpolicy_violation", "security", "warn"),
    ("ssid_injection", "security", "warn"),
    ("sw_alarm_chassis_partition", "infrastructure", "warn"),
    ("sw_alarm_chassis_pem", "infrastructure", "warn"),
    ("sw_alarm_chassis_poe", "infrastructure", "warn"),
    ("sw_alarm_chassis_psu", "infrastructure", "warn"),
    ("sw_bad_optics", "infrastructure", "warn"),
    ("sw_bgp_neighbor_state_changed", "infrastructure", "info"),
    ("sw_bpdu_error", "infrastructure", "warn"),
    ("sw_dhcp_pool_exhausted", "infrastructure", "warn"),
    ("switch_down", "infrastructure", "warn"),
    ("switch_reconnected", "infrastructure", "info"),
    ("switch_restarted", "infrastructure", "info"),
    ("switch_stp_loop", "marvis", "critical"),
    ("tkip_icv_attack", "security", "warn"),
    ("vc_backup_failed", "infrastructure", "critical"),
    ("vc_master_changed", "infrastructure", "critical"),
    ("vc_member_added", "infrastructure", "info"),
    ("vc_member_deleted", "infrastructure", "critical"),
    ("vendor_ie_missing", "security", "warn"),
    ("vpn_peer_down", "infrastructure", "warn"),
    ("watched_station", "security", "warn"),
    ("zero_ssid_association", "security", "warn"),
];

/// (group, severity) of a known alarm type; `-` and `_` are the same (the Juniper docs write
/// `rogue-ap-detected`).
pub fn alarm_def(kind: &str) -> Option<(&'static str, &'static str)> {
    let k = kind.trim().to_ascii_lowercase().replace('-', "_");
    let k = k.strip_suffix("_detected").filter(|s| ALARM_DEFS.iter().any(|d| d.0 == *s)).unwrap_or(&k);
    ALARM_DEFS.binary_search_by(|d| d.0.cmp(k)).ok().map(|i| (ALARM_DEFS[i].1, ALARM_DEFS[i].2))
}

/// An alarm: WARN/ERROR logs by Mist severity, and the alarms counter.
pub fn alarm(cx: &mut Cx<'_>, a: &Alarm, out: &mut EventOut) {
    let kind = a.kind.clone().filter(|k| !k.is_empty()).unwrap_or_else(|| "unknown".into());
    let def = alarm_def(&kind);
    let group = a.group.clone().filter(|g| !g.is_empty()).or(def.map(|d| d.0.to_owned()));
    let severity = a.severity.clone().filter(|s| !s.is_empty()).or(def.map(|d| d.1.to_owned()));
    let group = group.unwrap_or_else(|| "unknown".into());
    let severity_word = severity.unwrap_or_else(|| "unknown".into());
    // An alarm of unknown severity is still an alarm: at least WARN.
    out.severity = Severity::from_mist(&severity_word).unwrap_or(Severity::Warn);
    out.attrs = vec![
        kv(attrs::ALARM_TYPE, kind.as_str()),
        kv(attrs::ALARM_GROUP, group.as_str()),
        kv(attrs::ALARM_SEVERITY, severity_word.as_str()),
    ];
    out.consumed = &["type", "group", "severity"];
    let count = a.count.unwrap_or(1).max(1);
    let mut body = format!(
        "alarm {kind} (severity {severity_word}, group {group}): {count} occurrence{}",
        if count == 1 { "" } else { "s" }
    );
    let targets: Vec<&String> = a.hostnames.iter().flatten().chain(a.aps.iter().flatten()).take(5).collect();
    if !targets.is_empty() {
        body.push_str(" on ");
        body.push_str(&targets.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
    }
    if a.update == Some(true) {
        body.push_str(" (update)");
    }
    out.body = body;
    cx.count(
        &metrics::ALARMS,
        vec![(attrs::ALARM_TYPE, kind), (attrs::ALARM_GROUP, group), (attrs::ALARM_SEVERITY, severity_word)],
        1,
    );
}

/// An audit: an INFO log whose `before`/`after` are decoded when Mist JSON-encoded them.
pub fn audit(_cx: &mut Cx<'_>, a: &Audit, out: &mut EventOut) {
    out.severity = Severity::Info;
    let who = a.admin_name.as_deref().filter(|s| !s.is_empty()).unwrap_or("someone");
    out.body = match a.message.as_deref().filter(|s| !s.is_empty()) {
        Some(m) => format!("{m} (by {who})"),
        None => format!("configuration change by {who}"),
    };
    if let Some(b) = &a.before {
        out.decoded.push(("before", b.0.clone()));
    }
    if let Some(b) = &a.after {
        out.decoded.push(("after", b.0.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_defs_sorted_and_lookup_tolerant() {
        assert!(ALARM_DEFS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(alarm_def("rogue-ap-detected"), Some(("security", "critical")));
        assert_eq!(alarm_def("device_down"), Some(("infrastructure", "warn")));
        assert_eq!(alarm_def("string"), None);
    }
}
