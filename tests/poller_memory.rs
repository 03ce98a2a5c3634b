//! Heap per tracked client and device, measured with a counting allocator while the poller's
//! state merges the real sample payloads under distinct MACs. Prints the figures and checks
//! them against a generous bound (a regression guard, not a timing test).

use mist_otel::mist::api::SiteRef;
use mist_otel::poller::state::State;
use serde_json::{Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: delegates to the system allocator; only counts the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn sample(rel: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/mist-samples").join(rel);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

#[test]
fn heap_per_tracked_client_and_device() {
    const CLIENTS: usize = 10_000;
    const DEVICES: usize = 1_000;
    let client = sample("stats/client_stats.json")[0].clone();
    let ap = sample("stats/ap_stats.json")[0].clone();
    let site =
        SiteRef { id: "s1".into(), name: "HQ".into(), country_code: String::new(), timezone: String::new() };
    let mut st = State::new("org".into(), CLIENTS, Duration::from_secs(600));
    st.set_sites(vec![site]);
    // Counted from before the frames exist: they are consumed by the merge, so what is left
    // afterwards is the state's own memory.
    let before = LIVE.load(Ordering::Relaxed);
    let frames: Vec<Value> = (0..CLIENTS)
        .map(|i| {
            let mut c = client.clone();
            c["mac"] = json!(format!("{i:012x}"));
            c["hostname"] = json!(format!("host-{i}"));
            c
        })
        .collect();
    let now = Instant::now();
    for f in frames {
        // Dropping each frame after the merge is what the stream does too.
        st.apply("/sites/s1/stats/clients", f, now, 1);
    }
    let per_client = (LIVE.load(Ordering::Relaxed) - before) as f64 / CLIENTS as f64;
    assert_eq!(st.clients.len(), CLIENTS);

    let before = LIVE.load(Ordering::Relaxed);
    let frames: Vec<Value> = (0..DEVICES)
        .map(|i| {
            let mut d = ap.clone();
            d["mac"] = json!(format!("d{i:011x}"));
            d
        })
        .collect();
    for f in frames {
        st.apply("/sites/s1/stats/devices", f, now, 1);
    }
    let per_device = (LIVE.load(Ordering::Relaxed) - before) as f64 / DEVICES as f64;
    println!(
        "heap per tracked client: {per_client:.0} bytes; per tracked AP (full ap_stats sample): {per_device:.0} bytes"
    );
    // Scrape cost at this size, for the record (printed, not asserted).
    let t0 = Instant::now();
    let fams = mist_otel::poller::gather::gather(&st, now);
    let mut text = String::new();
    mist_otel::poller::prometheus::render_prometheus(&fams, &mut text);
    println!(
        "one scrape of {CLIENTS} clients + {DEVICES} APs: {} lines, {} KiB, {:?} (debug build)",
        text.lines().count(),
        text.len() / 1024,
        t0.elapsed()
    );
    assert!(text.contains("mist_client_rssi_dbm{"));
    assert!(per_client < 1024.0, "{per_client} bytes per client");
    assert!(per_device < 16.0 * 1024.0, "{per_device} bytes per device");
}
