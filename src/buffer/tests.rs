use super::config::Fsync;
use super::*;
use crate::telemetry::buffer::{DropReason, DroppedLabels};

fn cfg(durable: bool) -> BufferConfig {
    BufferConfig { max_bytes: 1024 * 1024, durable, ..Default::default() }
}

/// Both durable modes: writer thread with group commit, and inline writes.
fn durable_cfgs() -> [BufferConfig; 2] {
    [BufferConfig { fsync: Fsync::Always, ..cfg(true) }, BufferConfig { fsync: Fsync::Interval, ..cfg(true) }]
}

#[tokio::test]
async fn durable_survives_reopen_and_removes() {
    for c in durable_cfgs() {
        durable_survives_reopen_and_removes_with(c).await;
    }
}

async fn durable_survives_reopen_and_removes_with(c: BufferConfig) {
    let dir = tempfile::tempdir().unwrap();
    {
        let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
        let mut joins = Vec::new();
        for i in 0..50u64 {
            let b = b.clone();
            joins.push(tokio::spawn(async move {
                b.append("default", i, Bytes::from(format!("{{\"n\":{i}}}"))).await
            }));
        }
        for j in joins {
            j.await.unwrap().unwrap();
        }
        assert_eq!(b.depth().0, 50);
        if c.fsync == Fsync::Always {
            // Group commit: the 50 concurrent appends shared commits (one fsync each).
            let commits = b.metrics().commits.get();
            assert!(commits < 50, "{commits} commits for 50 concurrent appends");
        }
        b.remove_through(9).await;
        // The removal is committed by the writer; an append after it proves ordering.
        b.append("x", 99, Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(b.depth().0, 41);
    }
    let b = reopen(&c, dir.path()).await;
    assert_eq!(b.depth().0, 41);
    let all = b.read(0, 1000, u64::MAX).await.unwrap();
    assert_eq!(all.len(), 41);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all.last().unwrap().endpoint, "x");
    let next = b.append("default", 1, Bytes::from_static(b"{}")).await.unwrap();
    assert!(next > all.last().unwrap().seq);
}

/// Inline writes from several threads at once, with removals: a request that finds the log
/// held hands its command to the holder, and none is left unwritten. A lost hand-over hangs
/// the round's last appends (caught by the timeout); rounds give it many chances to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inline_appends_from_many_threads_are_all_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = BufferConfig {
        fsync: Fsync::Interval,
        // Long: a sync pass also writes what is queued, which would hide a lost hand-over.
        fsync_interval: Duration::from_secs(60),
        max_bytes: 256 * 1024 * 1024,
        ..cfg(true)
    };
    let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
    // Large enough that writes take a while and overlap.
    let pad = "x".repeat(16 * 1024);
    let (rounds, tasks, per_task) = (12u64, 16u64, 20u64);
    let mut all_seqs = Vec::new();
    let mut last_round = Vec::new();
    for r in 0..rounds {
        let before = all_seqs.iter().copied().max();
        let mut joins = Vec::new();
        for t in 0..tasks {
            let (b, pad) = (b.clone(), pad.clone());
            joins.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..per_task {
                    let n = (r * tasks + t) * per_task + i;
                    let body = Bytes::from(format!("{{\"n\":{n},\"pad\":\"{pad}\"}}"));
                    seqs.push(b.append("default", n, body).await.unwrap());
                }
                seqs
            }));
        }
        // The previous rounds' removal goes through the same hand-over, amid the appends.
        if let Some(through) = before {
            let b = b.clone();
            joins.push(tokio::spawn(async move {
                assert!(b.remove_through(through).await);
                Vec::new()
            }));
        }
        let round = async {
            let mut seqs = Vec::new();
            for j in joins {
                seqs.extend(j.await.unwrap());
            }
            seqs
        };
        let seqs = tokio::time::timeout(Duration::from_secs(10), round)
            .await
            .unwrap_or_else(|_| panic!("round {r}: an append or removal never returned"));
        last_round = ((r * tasks * per_task)..((r + 1) * tasks * per_task)).collect::<Vec<_>>();
        all_seqs.extend(seqs);
    }
    let n = all_seqs.len();
    all_seqs.sort_unstable();
    all_seqs.dedup();
    assert_eq!(all_seqs.len(), n, "a sequence number was handed out twice");
    // Exactly the last round is kept, each delivery once, and after a restart too.
    let kept = |v: Vec<Delivery>| {
        let mut ns: Vec<u64> = v.iter().map(|d| d.received_at_ns).collect();
        ns.sort_unstable();
        ns
    };
    assert_eq!(kept(b.read(0, 100_000, u64::MAX).await.unwrap()), last_round);
    drop(b);
    let b = reopen(&c, dir.path()).await;
    assert_eq!(kept(b.read(0, 100_000, u64::MAX).await.unwrap()), last_round);
}

#[tokio::test]
async fn full_rejects_and_drop_oldest_evicts() {
    let [always, interval] = durable_cfgs();
    for base in [cfg(false), always, interval] {
        let durable = (base.durable, base.fsync);
        let dir = tempfile::tempdir().unwrap();
        let body = Bytes::from(vec![b'x'; 330 * 1024]);
        let b = Buffer::open(&base, dir.path(), &mut Registry::default()).unwrap();
        for _ in 0..3 {
            b.append("default", 0, body.clone()).await.unwrap();
        }
        assert!(matches!(b.append("default", 0, body.clone()).await, Err(AppendError::Full)));
        assert!(!b.has_room());
        drop(b);
        let dir = tempfile::tempdir().unwrap();
        let c = BufferConfig { overflow: Overflow::DropOldest, ..base };
        let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
        for i in 0..5 {
            b.append("default", i, body.clone()).await.unwrap();
        }
        let kept = b.read(0, 100, u64::MAX).await.unwrap();
        assert_eq!(kept.len(), 3, "{durable:?}");
        assert_eq!(kept[0].received_at_ns, 2);
        let dropped =
            b.metrics().dropped.get_or_create(&DroppedLabels { reason: DropReason::Overflow }).get();
        assert_eq!(dropped, 2);
    }
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("buffer"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg"))
        .count()
}

async fn reopen(c: &BufferConfig, dir: &Path) -> Buffer {
    // The writer thread exits when the last handle drops.
    for _ in 0..100 {
        if let Ok(b) = Buffer::open(c, dir, &mut Registry::default()) {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("reopen failed");
}

#[tokio::test]
async fn acknowledged_segments_are_deleted_and_never_come_back() {
    for c in durable_cfgs() {
        acknowledged_segments_are_deleted_and_never_come_back_with(c).await;
    }
}

async fn acknowledged_segments_are_deleted_and_never_come_back_with(c: BufferConfig) {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
    let body = Bytes::from(vec![b'y'; 10_000]);
    for i in 0..60 {
        b.append("default", i, body.clone()).await.unwrap();
    }
    let many = segment_files(dir.path());
    assert!(many >= 4, "600 kB in 128 KiB segments gave {many} files");
    let read = b.read(0, 1000, u64::MAX).await.unwrap();
    assert_eq!(read.len(), 60);
    assert!(read.iter().all(|d| d.body == body));
    assert!(b.remove_through(49).await);
    // Deleted off the request path, by the writer or sync thread.
    let mut few = segment_files(dir.path());
    for _ in 0..100 {
        if few < many {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        few = segment_files(dir.path());
    }
    assert!(few < many, "{few} segment files after acknowledging 50 of 60 ({many} before)");
    drop(b);
    let b = reopen(&c, dir.path()).await;
    let left = b.read(0, 1000, u64::MAX).await.unwrap();
    assert_eq!(left.iter().map(|d| d.received_at_ns).collect::<Vec<_>>(), (50..60).collect::<Vec<_>>());
    assert_eq!(b.depth(), (10, 10 * stored_size("default", &body)));
    // Sequence numbers keep increasing across restarts, even once everything is acknowledged.
    assert!(b.remove_through(left.last().unwrap().seq).await);
    drop(b);
    let b = reopen(&c, dir.path()).await;
    assert_eq!(b.depth().0, 0);
    let seq = b.append("default", 1, Bytes::from_static(b"{}")).await.unwrap();
    assert!(seq > left.last().unwrap().seq);
    assert_eq!(segment_files(dir.path()), 1);
}

#[tokio::test]
async fn drop_oldest_evictions_survive_a_restart() {
    for c in durable_cfgs() {
        let c = BufferConfig { overflow: Overflow::DropOldest, ..c };
        drop_oldest_evictions_survive_a_restart_with(c).await;
    }
}

async fn drop_oldest_evictions_survive_a_restart_with(c: BufferConfig) {
    let dir = tempfile::tempdir().unwrap();
    let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
    let body = Bytes::from(vec![b'z'; 300 * 1024]);
    for i in 0..7 {
        b.append("default", i, body.clone()).await.unwrap();
    }
    drop(b);
    let b = reopen(&c, dir.path()).await;
    let kept: Vec<u64> = b.read(0, 100, u64::MAX).await.unwrap().iter().map(|d| d.received_at_ns).collect();
    assert_eq!(kept, vec![4, 5, 6]);
}

#[tokio::test]
async fn a_damaged_record_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(true);
    let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
    for i in 0..3 {
        b.append("default", i, Bytes::from(format!("{{\"body\":{i}}}"))).await.unwrap();
    }
    // Flip a byte of the second body on disk, behind the buffer's back.
    let seg = std::fs::read_dir(dir.path().join("buffer"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    // Damage the length field of the second frame: the frames are found from the index, so
    // one damaged length cannot hide the frames after it.
    let mut data = std::fs::read(&seg).unwrap();
    let second = data.windows(8).position(|w| w == b"body\":1}").unwrap();
    let frame_start = second - (8 + 1 + 8 + 8 + 2 + "default".len() + 2);
    data[frame_start] ^= 0x7f;
    std::fs::write(&seg, data).unwrap();
    let read = b.read(0, 10, u64::MAX).await.unwrap();
    // Every delivery comes back, in order, so the pipeline moves past the damaged one,
    // which has an empty body and is counted.
    assert_eq!(read.len(), 3);
    assert_eq!(&read[0].body[..], b"{\"body\":0}");
    assert!(read[1].body.is_empty());
    assert_eq!(&read[2].body[..], b"{\"body\":2}");
    assert!(read.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(b.metrics().dropped.get_or_create(&DroppedLabels { reason: DropReason::Corrupt }).get(), 1);
}

#[tokio::test]
async fn health_reads_the_buffers_own_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::default();
    let b = Buffer::open(&cfg(true), dir.path(), &mut registry).unwrap();
    let h = b.health();
    assert_eq!((h.deliveries, h.bytes, h.oldest_age_seconds, h.dropped), (0, 0, None, 0));
    assert_eq!((h.mode, h.fsync, h.max_bytes), (BufferMode::Durable, Some("interval"), 1024 * 1024));
    b.append("default", 1, Bytes::from_static(b"{}")).await.unwrap();
    let h = b.health();
    assert_eq!((h.deliveries, h.bytes), (1, stored_size("default", b"{}")));
    assert!(h.oldest_age_seconds.is_some_and(|a| a > 0.0));
    // Reading the drop counters does not create series that were never used.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(!text.contains("reason="), "{text}");
    let m = Buffer::new(&cfg(false)).health();
    assert_eq!((m.mode, m.fsync), (BufferMode::Memory, None));
}

/// Which header field of a frame to damage.
#[derive(Debug, Clone, Copy)]
enum Field {
    Length,
    Checksum,
}

/// Writes 50 deliveries (bodies `{"n":i}`), optionally makes their segment an older one (a
/// reopen starts a new segment), damages `field` of frame 10 on disk, reopens: only the damaged
/// delivery may be missing, and it is counted.
async fn damaged_frame_loses_only_itself(older: bool, field: Field) {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(true);
    {
        let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
        for i in 0..50 {
            b.append("default", i, Bytes::from(format!("{{\"n\":{i}}}"))).await.unwrap();
        }
    }
    if older {
        drop(reopen(&c, dir.path()).await);
    }
    let mut segs: Vec<_> = std::fs::read_dir(dir.path().join("buffer"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    assert_eq!(segs.len(), if older { 2 } else { 1 });
    let seg = &segs[0];
    let mut data = std::fs::read(seg).unwrap();
    let body = data.windows(8).position(|w| w == b"{\"n\":10}").unwrap();
    let frame = body - (8 + 1 + 8 + 8 + 2 + "default".len());
    match field {
        // A length pointing past the end of the file.
        Field::Length => data[frame + 2] ^= 0x40,
        Field::Checksum => data[frame + 5] ^= 0x01,
    }
    std::fs::write(seg, &data).unwrap();
    let b = reopen(&c, dir.path()).await;
    let back: Vec<u64> = b.read(0, 1000, u64::MAX).await.unwrap().iter().map(|d| d.received_at_ns).collect();
    let expected: Vec<u64> = (0..50).filter(|&i| i != 10).collect();
    assert_eq!(back, expected, "older={older} field={field:?}");
    let corrupt = b.metrics().dropped.get_or_create(&DroppedLabels { reason: DropReason::Corrupt }).get();
    assert_eq!(corrupt, 1, "older={older} field={field:?}");
}

#[tokio::test]
async fn a_damaged_frame_in_the_middle_of_an_older_segment_loses_only_itself() {
    damaged_frame_loses_only_itself(true, Field::Checksum).await;
    damaged_frame_loses_only_itself(true, Field::Length).await;
}

#[tokio::test]
async fn a_damaged_frame_in_the_middle_of_the_newest_segment_loses_only_itself() {
    damaged_frame_loses_only_itself(false, Field::Checksum).await;
    damaged_frame_loses_only_itself(false, Field::Length).await;
}
