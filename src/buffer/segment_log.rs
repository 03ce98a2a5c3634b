//! The durable buffer's on-disk format: an append-only log of segment files.
//!
//! `<data_dir>/buffer/<20-digit id>.seg`, oldest first. A segment starts with [`MAGIC`], then
//! frames of deliveries and acknowledgements (format in [`super::record`]).
//!
//! One writer at a time (the buffer holds the log behind a lock): one `write` per commit, and
//! the `fdatasync` either in the same commit (`fsync: always`) or on the sync thread. A
//! segment is deleted once every delivery in it is acknowledged and every older segment is
//! gone, so the newest acknowledgement always survives in a remaining segment (each new segment
//! starts with one). The one exception is a full disk: an acknowledgement that cannot be
//! written still deletes the segments it finishes ([`SegmentLog::ack_in_memory`]); a crash
//! then re-exports acknowledged deliveries, never loses one. On open, a damaged frame is reported, counted and skipped: the scan goes
//! on at the next frame that validates ([`super::scan`]), so only the damaged record is lost.
//! Damage with nothing valid after it at the end of the newest segment (a crash mid-write) is
//! cut off, uncounted: that write never finished.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::encode_ack;
use super::scan::{Damage, MAGIC, Replayed, Scan, scan_segment};

/// Deletes segment files taken out of the log; a failure is logged (the file is deleted at the
/// next start instead).
pub(super) fn remove_files(paths: impl IntoIterator<Item = PathBuf>) {
    for p in paths {
        if let Err(e) = std::fs::remove_file(&p) {
            tracing::warn!(segment = %p.display(), error = %e, "could not delete an acknowledged buffer segment");
        }
    }
}

/// Reads `len` bytes at `offset` of a segment.
pub(super) fn read_run(file: &File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(len);
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf.freeze())
}

struct Segment {
    id: u64,
    file: Arc<File>,
    len: u64,
    /// Highest delivery sequence number in the segment.
    last_seq: Option<u64>,
}

/// What [`SegmentLog::open`] found.
pub(super) struct Opened {
    pub log: SegmentLog,
    /// Deliveries not yet acknowledged, in order.
    pub deliveries: Vec<Replayed>,
    /// The next sequence number to assign.
    pub next_seq: u64,
    /// Frames skipped as corrupt.
    pub corrupt: u64,
    /// Why no new segment could be started (a full disk): the log opened anyway and the next
    /// write tries again ([`SegmentLog::prepare`]).
    pub start_error: Option<std::io::Error>,
}

/// The segment files, owned by the writer thread.
pub(super) struct SegmentLog {
    /// Held (locked) while the log is open.
    _lock: File,
    dir: PathBuf,
    segments: VecDeque<Segment>,
    segment_bytes: u64,
    /// The id the next new segment gets.
    next_id: u64,
    /// The acknowledgement watermark. It may run ahead of what is on disk after a failed write
    /// ([`SegmentLog::ack_in_memory`]); the next segment started writes it in its header.
    acked: Option<u64>,
    /// Set after a failed write: the current segment may hold a partial write the kernel could
    /// not make durable, so the next write starts a new segment.
    roll_next: bool,
    /// The current segment was written since the last sync (`fsync: interval`).
    dirty: bool,
    /// See [`SegmentLog::open`].
    sync_writes: bool,
    /// Closed or new segments not synced yet (`fsync: interval`).
    unsynced: Vec<Arc<File>>,
    /// A segment was created or a sync failed since the directory was last synced.
    dir_unsynced: bool,
}

/// What [`SegmentLog::take_unsynced`] hands to the sync thread.
#[derive(Default)]
pub(super) struct Unsynced {
    /// Files to `fdatasync`.
    pub files: Vec<Arc<File>>,
    /// The directory to `fsync` (after the files), if set.
    pub dir: Option<PathBuf>,
}

impl Drop for SegmentLog {
    fn drop(&mut self) {
        if let Err(e) = self.take_unsynced().sync() {
            tracing::error!(error = %e, dir = %self.dir.display(), "final sync of the buffer log failed");
        }
    }
}

impl Unsynced {
    /// Syncs the files, then the directory.
    pub fn sync(&self) -> std::io::Result<()> {
        for f in &self.files {
            f.sync_data()?;
        }
        if let Some(d) = &self.dir {
            sync_dir(d)?;
        }
        Ok(())
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl SegmentLog {
    /// Opens `dir` (created if missing), replays every segment and starts a new one for appends.
    /// `sync_writes`: every write is synced by its caller (`fsync: always`), so a new segment
    /// is synced when it starts too; otherwise new segments, closed segments and the directory
    /// are synced by whoever calls [`SegmentLog::take_unsynced`].
    pub fn open(dir: &Path, segment_bytes: u64, sync_writes: bool) -> std::io::Result<Opened> {
        std::fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        let ids = segment_ids(dir)?;
        let mut deliveries = Vec::new();
        let mut segments = VecDeque::new();
        let mut acked: Option<u64> = None;
        let mut max_seq: Option<u64> = None;
        let mut corrupt = 0;
        let mut damaged: Vec<Damage> = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            let newest = i + 1 == ids.len();
            let path = segment_path(dir, id);
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let scan = scan_segment(&file, id, max_seq)?;
            match check_end(&file, &path, &scan, newest)? {
                End::Unstarted => {
                    drop(file);
                    std::fs::remove_file(&path)?;
                    continue;
                }
                End::Corrupt => corrupt += 1,
                End::Whole => {}
            }
            acked = acked.max(scan.acked);
            let last_seq = scan.deliveries.last().map(|d| d.seq);
            max_seq = max_seq.max(last_seq);
            deliveries.extend(scan.deliveries);
            damaged.extend(scan.damaged);
            segments.push_back(Segment { id, file: Arc::new(file), len: scan.valid_len, last_seq });
        }
        corrupt += damaged.iter().map(|d| d.lost(acked)).sum::<u64>();
        let next_seq = max_seq.max(acked).map_or(0, |s| s + 1);
        if let Some(a) = acked {
            deliveries.retain(|d| d.seq > a);
        }
        let next_id = ids.last().map_or(0, |i| i + 1);
        let mut log = SegmentLog {
            _lock: lock,
            dir: dir.to_path_buf(),
            segments,
            segment_bytes,
            next_id,
            acked,
            roll_next: false,
            dirty: false,
            sync_writes,
            unsynced: Vec::new(),
            dir_unsynced: false,
        };
        let start_error = log.start();
        Ok(Opened { log, deliveries, next_seq, corrupt, start_error })
    }

    /// At open: starts the segment for appends and deletes the finished ones. The new segment
    /// first, synced: it carries the acknowledgement before older ones go. When it cannot be
    /// created (a full disk), the finished segments are deleted first to make room and the
    /// start is tried again; if that fails too, the log opens without one (appends fail and
    /// retry until there is room), and the error is returned.
    fn start(&mut self) -> Option<std::io::Error> {
        let started = self.roll(true).or_else(|first| {
            remove_files(self.take_acked().into_iter().map(|(_, p)| p));
            self.roll(true).map_err(|e| (first, e))
        });
        remove_files(self.take_acked().into_iter().map(|(_, p)| p));
        let (first, e) = started.err()?;
        tracing::error!(error = %e, first_error = %first, dir = %self.dir.display(),
            "could not start a buffer segment; appends fail until there is room");
        self.roll_next = true;
        Some(e)
    }

    /// The open segments' files (for readers).
    pub fn files(&self) -> impl Iterator<Item = (u64, Arc<File>)> + '_ {
        self.segments.iter().map(|s| (s.id, s.file.clone()))
    }

    /// The segment the next write goes to and the offset it starts at; starts a new segment
    /// first when the current one is full (returned as `Some(new file)` for the readers' map).
    pub fn prepare(&mut self) -> std::io::Result<(u64, u64, Option<Arc<File>>)> {
        let (id, len) = self.segments.back().map(|s| (s.id, s.len)).unwrap_or((0, 0));
        if self.roll_next || self.segments.is_empty() || len >= self.segment_bytes {
            self.roll(self.sync_writes)?;
            self.roll_next = false;
            let s = self.segments.back().expect("just rolled");
            return Ok((s.id, s.len, Some(s.file.clone())));
        }
        Ok((id, len, None))
    }

    /// Writes `buf` at the end of the current segment; with `sync`, also makes it durable
    /// (`fdatasync`) before returning. `acked` is the acknowledgement `buf` carries, if any.
    pub fn write(
        &mut self,
        buf: &[u8],
        last_seq: Option<u64>,
        acked: Option<u64>,
        sync: bool,
    ) -> std::io::Result<()> {
        let s = self.segments.back_mut().expect("a current segment always exists");
        let result =
            s.file.write_all_at(buf, s.len).and_then(|()| if sync { s.file.sync_data() } else { Ok(()) });
        match result {
            Ok(()) => {
                s.len += buf.len() as u64;
                s.last_seq = s.last_seq.max(last_seq);
                self.acked = self.acked.max(acked);
                self.dirty |= !sync;
                Ok(())
            }
            Err(e) => {
                // Best effort: drop the partial write; either way the next write starts afresh.
                let _ = s.file.set_len(s.len);
                self.roll_next = true;
                Err(e)
            }
        }
    }

    /// Everything written without a sync since the last call: the current segment if dirty,
    /// segments closed or started since, and the directory if a segment was created. The
    /// caller syncs it outside any lock ([`Unsynced::sync`]) and hands it back with
    /// [`SegmentLog::sync_failed`] if that fails.
    pub fn take_unsynced(&mut self) -> Unsynced {
        let mut files = std::mem::take(&mut self.unsynced);
        if std::mem::take(&mut self.dirty)
            && let Some(s) = self.segments.back()
        {
            files.push(s.file.clone());
        }
        let dir = std::mem::take(&mut self.dir_unsynced).then(|| self.dir.clone());
        Unsynced { files, dir }
    }

    /// A sync failed: keep the files for the next attempt and continue in a new segment (after
    /// a failed sync the kernel may have dropped the unwritten pages of this one's tail).
    pub fn sync_failed(&mut self, u: Unsynced) {
        self.unsynced.extend(u.files);
        self.dir_unsynced |= u.dir.is_some();
        self.roll_next = true;
    }

    /// Raises the acknowledgement watermark without writing it, after the write that carried it
    /// failed (a full disk), so that [`SegmentLog::take_acked`] can free the space of finished
    /// segments anyway. Nothing acknowledged is lost: the deleted segments hold only
    /// acknowledged deliveries, and the next segment started carries the watermark in its
    /// header. Until then a crash re-exports the acknowledged deliveries of the segments left.
    pub fn ack_in_memory(&mut self, through: u64) {
        self.acked = self.acked.max(Some(through));
    }

    /// Takes the oldest segments whose deliveries are all acknowledged (never the current one)
    /// out of the log and returns their ids and paths. The caller deletes the files with
    /// [`remove_files`], outside any lock: unlinking a large file can take milliseconds. If
    /// that never happens (a crash), the next open finds them fully acknowledged and deletes
    /// them then.
    pub fn take_acked(&mut self) -> Vec<(u64, PathBuf)> {
        let mut out = Vec::new();
        while self.segments.len() > 1 {
            let s = &self.segments[0];
            let done = match (s.last_seq, self.acked) {
                (None, _) => true,
                (Some(last), Some(a)) => last <= a,
                (Some(_), None) => false,
            };
            if !done {
                break;
            }
            out.push((s.id, segment_path(&self.dir, s.id)));
            self.segments.pop_front();
        }
        out
    }

    /// Starts the next segment: magic, then the current acknowledgement so it outlives older
    /// segments. With `sync_now`, the closed segment, the new one and the directory are synced
    /// here (the caller is the writer thread or `open`); otherwise that is left to the sync
    /// thread, so a request thread never waits for a disk flush.
    fn roll(&mut self, sync_now: bool) -> std::io::Result<()> {
        let id = self.next_id;
        if sync_now {
            // Unsynced writes of the segment being closed go to disk first.
            let u = self.take_unsynced();
            if let Err(e) = u.sync() {
                self.sync_failed(u);
                return Err(e);
            }
        } else if std::mem::take(&mut self.dirty)
            && let Some(s) = self.segments.back()
        {
            self.unsynced.push(s.file.clone());
        }
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        let mut head = MAGIC.to_vec();
        if let Some(a) = self.acked {
            encode_ack(&mut head, a);
        }
        let started = file.write_all_at(&head, 0).and_then(|()| {
            if sync_now {
                file.sync_all()?;
                sync_dir(&self.dir)
            } else {
                Ok(())
            }
        });
        if let Err(e) = started {
            // Leave no half-started segment behind: the next attempt reuses the id.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        self.next_id = id + 1;
        let file = Arc::new(file);
        if !sync_now {
            self.unsynced.push(file.clone());
            self.dir_unsynced = true;
        }
        self.segments.push_back(Segment { id, file, len: head.len() as u64, last_seq: None });
        Ok(())
    }
}

/// Takes the directory's lock file: one process per buffer directory, since two writers would
/// interleave their segments.
fn lock_dir(dir: &Path) -> std::io::Result<File> {
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
    lock.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => std::io::Error::new(
            std::io::ErrorKind::ResourceBusy,
            "another mist-otel process is using this buffer directory (data_dir)",
        ),
        std::fs::TryLockError::Error(e) => e,
    })?;
    Ok(lock)
}

/// The ids of the segment files in `dir`, oldest first.
fn segment_ids(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(".seg").filter(|s| s.len() == 20).and_then(|s| s.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// How a scanned segment ends, after repair.
enum End {
    /// Every frame is good, or was skipped as damaged, or a torn tail was cut off.
    Whole,
    /// The newest segment was never started: the caller removes it.
    Unstarted,
    /// Damage that runs to the end of an older segment (or a file that is not a segment): the
    /// rest of the segment is skipped.
    Corrupt,
}

/// Reports the damaged frames the scan skipped and decides what damage at the end means: only
/// a write in progress at a crash can end the newest segment badly with nothing valid after
/// it, so such a tail is cut off; anything else is corruption, reported, counted and kept.
fn check_end(file: &File, path: &Path, scan: &Scan, newest: bool) -> std::io::Result<End> {
    for d in &scan.damaged {
        tracing::error!(segment = %path.display(), offset = d.offset, bytes = d.len, error = %d.error,
            "corrupt frame in the buffer log; skipped to the next valid frame");
    }
    let Some(tail) = &scan.tail else { return Ok(End::Whole) };
    if newest && tail.torn && scan.valid_len == 0 {
        // A segment whose start was never written (a crash while starting it).
        tracing::warn!(segment = %path.display(), "removing an unfinished buffer segment");
        Ok(End::Unstarted)
    } else if newest && tail.torn {
        tracing::warn!(segment = %path.display(), offset = scan.valid_len, error = %tail.error,
            "cutting off an incomplete write at the end of the buffer log");
        file.set_len(scan.valid_len)?;
        file.sync_all()?;
        Ok(End::Whole)
    } else {
        tracing::error!(segment = %path.display(), offset = scan.valid_len, error = %tail.error,
            "corrupt frame in the buffer log; the rest of this segment is skipped");
        Ok(End::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::record::{FRAME_HEADER, encode_delivery};

    #[test]
    fn torn_tail_is_cut_and_acks_survive_segment_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = SegmentLog::open(dir.path(), 64, false).unwrap();
        for seq in 0..4 {
            o.log.prepare().unwrap();
            let mut buf = Vec::new();
            encode_delivery(&mut buf, seq, seq, "e", &[b'x'; 40]);
            o.log.write(&buf, Some(seq), None, seq % 2 == 0).unwrap();
        }
        o.log.prepare().unwrap();
        let mut buf = Vec::new();
        encode_ack(&mut buf, 1);
        o.log.write(&buf, None, Some(1), true).unwrap();
        let removed = o.log.take_acked();
        assert!(!removed.is_empty(), "segments holding only acknowledged deliveries are deleted");
        remove_files(removed.into_iter().map(|(_, p)| p));
        // A torn write at the end of the newest segment.
        let newest = o.log.segments.back().unwrap();
        let mut torn = Vec::new();
        encode_delivery(&mut torn, 4, 4, "e", b"lost");
        newest.file.write_all_at(&torn[..torn.len() - 3], newest.len).unwrap();
        let busy = SegmentLog::open(dir.path(), 64, false).err().expect("a second open of a log in use");
        assert!(busy.to_string().contains("another mist-otel process"), "{busy}");
        drop(o);
        let o = SegmentLog::open(dir.path(), 64, false).unwrap();
        let seqs: Vec<u64> = o.deliveries.iter().map(|d| d.seq).collect();
        assert_eq!(seqs, vec![2, 3]);
        assert_eq!(o.next_seq, 4);
        assert_eq!(o.corrupt, 0);
    }

    #[test]
    fn damage_inside_the_newest_segment_is_kept_and_an_unstarted_segment_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = SegmentLog::open(dir.path(), 1 << 20, false).unwrap();
        let mut buf = Vec::new();
        for seq in 0..3 {
            encode_delivery(&mut buf, seq, seq, "e", b"{}");
        }
        o.log.prepare().unwrap();
        o.log.write(&buf, Some(2), None, true).unwrap();
        let (id, file) = o.log.files().last().unwrap();
        drop(o);
        // A checksum failure in the middle (not a torn end): nothing may be cut off.
        let path = segment_path(dir.path(), id);
        let len = std::fs::metadata(&path).unwrap().len();
        let mut data = std::fs::read(&path).unwrap();
        let second = MAGIC.len() + buf.len() / 3;
        data[second + FRAME_HEADER + 3] ^= 1;
        std::fs::write(&path, &data).unwrap();
        drop(file);
        // A newest segment that a crash left without even its header.
        std::fs::write(segment_path(dir.path(), id + 1), b"").unwrap();
        let o = SegmentLog::open(dir.path(), 1 << 20, false).unwrap();
        assert_eq!(o.corrupt, 1);
        // Only the damaged record is lost (issue 14: the frames after it used to be lost too).
        assert_eq!(o.deliveries.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len, "the damaged segment was cut");
        assert!(!segment_path(dir.path(), id + 1).exists(), "the unstarted segment is still there");
    }

    #[test]
    fn unsynced_writes_and_new_segments_are_handed_to_the_sync_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = SegmentLog::open(dir.path(), 64, false).unwrap();
        assert!(o.log.take_unsynced().files.is_empty(), "open syncs what it starts");
        let mut buf = Vec::new();
        encode_delivery(&mut buf, 0, 0, "e", &[b'x'; 80]);
        o.log.prepare().unwrap();
        o.log.write(&buf, Some(0), None, false).unwrap();
        let u = o.log.take_unsynced();
        assert_eq!((u.files.len(), u.dir.is_some()), (1, false));
        // A failed sync keeps them for the next attempt.
        o.log.sync_failed(u);
        assert_eq!(o.log.take_unsynced().files.len(), 1);
        // The segment is full: the next write starts a new one without syncing on this thread;
        // the closed segment, the new one and the directory go to the sync thread.
        o.log.write(&buf, Some(1), None, false).unwrap();
        let (_, _, new_file) = o.log.prepare().unwrap();
        assert!(new_file.is_some());
        let u = o.log.take_unsynced();
        assert_eq!((u.files.len(), u.dir.is_some()), (2, true));
        u.sync().unwrap();
        assert!(o.log.take_unsynced().files.is_empty());
    }
}
