//! Reading a segment back when the log is opened: frame by frame, resynchronising after a
//! damaged frame so that the damage loses only the records it hit.
//!
//! A frame is damaged when its checksum does not match, its length is impossible or its
//! payload is malformed. The scan then looks for the next frame that validates: first where the
//! damaged frame's own length says the next one starts (right when only the checksum or the
//! payload was hit), else byte by byte. Only a frame whose checksum matches is taken, so a
//! damaged length cannot make the scan read garbage as records.
//!
//! The byte-by-byte search is bounded: a candidate must look like a frame (a known kind, a
//! length that fits the file, for a delivery a sequence number above the last one seen) before
//! its checksum is computed, and at most the file's length plus [`RESYNC_BUDGET`] bytes are
//! hashed per segment; past that the rest of the segment is given up (and counted).
//!
//! Damage with nothing valid after it, to the end of the file, is a *tail*: at the end of the
//! newest segment that is what a crash in the middle of a write leaves (see
//! `SegmentLog::open`).

use super::record::{
    FRAME_HEADER, FrameError, Loc, MAX_FRAME, Payload, RECORD_OVERHEAD, frame_header, parse_payload,
};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// First bytes of every segment file (format version 1).
pub(super) const MAGIC: &[u8; 8] = b"MOTLSEG1";

/// Bytes hashed while searching for the next valid frame, beyond the file's own length.
const RESYNC_BUDGET: u64 = 64 * 1024 * 1024;

/// Bytes read from the file at a time.
const WINDOW: usize = 256 * 1024;

/// Smallest payload of any frame (an acknowledgement).
const MIN_PAYLOAD: usize = 9;

/// A delivery found when replaying the log.
pub(super) struct Replayed {
    pub seq: u64,
    pub received_at_ns: u64,
    pub stored_len: u64,
    pub loc: Loc,
}

/// A damaged stretch of a segment with valid frames after it.
pub(super) struct Damage {
    /// Where the damaged stretch starts.
    pub offset: u64,
    /// Its length: the next valid frame starts at `offset + len`.
    pub len: u64,
    /// What was wrong with the frame at `offset`.
    pub error: FrameError,
    /// The sequence number of the last delivery before the damage (in this log).
    pub before: Option<u64>,
    /// The sequence number of the first delivery after it in the same segment.
    pub after: Option<u64>,
}

impl Damage {
    /// The deliveries this damage lost: the sequence numbers missing between its neighbours
    /// and not acknowledged; at least one, the damaged record itself.
    pub fn lost(&self, acked: Option<u64>) -> u64 {
        match (self.before, self.after) {
            (Some(before), Some(after)) => {
                let done = before.max(acked.unwrap_or(before));
                after.saturating_sub(done).saturating_sub(1).max(1)
            }
            _ => 1,
        }
    }
}

/// Damage that runs to the end of the file.
pub(super) struct Tail {
    /// What was wrong with the first bad frame (or the magic).
    pub error: FrameError,
    /// Nothing valid follows it (what a crash mid-write leaves); false when the search gave up
    /// or the file is not a segment at all.
    pub torn: bool,
}

/// What a segment holds.
#[derive(Default)]
pub(super) struct Scan {
    /// Deliveries, in order.
    pub deliveries: Vec<Replayed>,
    /// The highest acknowledgement.
    pub acked: Option<u64>,
    /// End of the last valid frame: where a tail starts.
    pub valid_len: u64,
    /// Damaged stretches skipped, with valid frames after each.
    pub damaged: Vec<Damage>,
    /// Damage from `valid_len` to the end of the file.
    pub tail: Option<Tail>,
    /// The last delivery's sequence number so far (this log's, across segments).
    last_seq: Option<u64>,
}

impl Scan {
    fn take(&mut self, found: Found) {
        match found {
            Found::Delivery(d) => {
                if let Some(damage) = self.damaged.last_mut().filter(|d| d.after.is_none()) {
                    damage.after = Some(d.seq);
                }
                self.last_seq = Some(d.seq);
                self.deliveries.push(d);
            }
            Found::Ack(a) => self.acked = self.acked.max(Some(a)),
        }
    }
}

/// Reads segment `id` frame by frame; `last_seq`: the last delivery of the older segments.
pub(super) fn scan_segment(file: &File, id: u64, last_seq: Option<u64>) -> std::io::Result<Scan> {
    let mut w = Window { file, file_len: file.metadata()?.len(), start: 0, buf: Vec::new() };
    let mut scan = Scan { last_seq, ..Scan::default() };
    if w.get(0, MAGIC.len())? != Some(&MAGIC[..]) {
        // Empty, unfinished or foreign: nothing in it counts.
        scan.tail = Some(Tail { error: FrameError::Malformed, torn: w.file_len <= MAGIC.len() as u64 });
        return Ok(scan);
    }
    let mut pos = MAGIC.len() as u64;
    scan.valid_len = pos;
    let mut budget = w.file_len + RESYNC_BUDGET;
    while pos < w.file_len {
        match frame_at(&mut w, id, pos)? {
            Ok((found, frame_len)) => {
                scan.take(found);
                pos += frame_len;
                scan.valid_len = pos;
            }
            Err(error) => match resync(&mut w, id, pos, scan.last_seq, &mut budget)? {
                Resync::At(next) => {
                    let before = scan.last_seq;
                    scan.damaged.push(Damage { offset: pos, len: next - pos, error, before, after: None });
                    pos = next;
                }
                Resync::Nothing => {
                    scan.tail = Some(Tail { error, torn: true });
                    return Ok(scan);
                }
                Resync::GaveUp => {
                    scan.tail = Some(Tail { error, torn: false });
                    return Ok(scan);
                }
            },
        }
    }
    Ok(scan)
}

/// A valid frame's content.
enum Found {
    Delivery(Replayed),
    Ack(u64),
}

/// Where the frames go on after a damaged one.
enum Resync {
    /// The next valid frame starts here.
    At(u64),
    /// No valid frame follows.
    Nothing,
    /// The search ran out of budget.
    GaveUp,
}

/// Finds the next valid frame after the damaged one at `bad`.
fn resync(
    w: &mut Window<'_>,
    id: u64,
    bad: u64,
    last_seq: Option<u64>,
    budget: &mut u64,
) -> std::io::Result<Resync> {
    // Where the damaged frame's own length says the next one starts.
    if let Some((len, _)) = w.get(bad, FRAME_HEADER)?.and_then(frame_header) {
        let next = bad + (FRAME_HEADER + len.min(MAX_FRAME + 1)) as u64;
        if next == w.file_len {
            return Ok(Resync::Nothing);
        }
        if len <= MAX_FRAME && next < w.file_len && frame_at(w, id, next)?.is_ok() {
            return Ok(Resync::At(next));
        }
    }
    let last_start = w.file_len.saturating_sub((FRAME_HEADER + MIN_PAYLOAD) as u64);
    for p in bad + 1..=last_start {
        let Some(len) = candidate(w, p, last_seq)? else { continue };
        let Some(left) = budget.checked_sub(len as u64) else { return Ok(Resync::GaveUp) };
        *budget = left;
        if frame_at(w, id, p)?.is_ok() {
            return Ok(Resync::At(p));
        }
    }
    Ok(Resync::Nothing)
}

/// The payload length of the frame starting at `p` if its header and first payload bytes look
/// like a frame's (checked before any hashing).
fn candidate(w: &mut Window<'_>, p: u64, last_seq: Option<u64>) -> std::io::Result<Option<usize>> {
    let file_len = w.file_len;
    let Some(b) = w.get(p, FRAME_HEADER + MIN_PAYLOAD)? else { return Ok(None) };
    let Some((len, _)) = frame_header(b) else { return Ok(None) };
    let fits = (MIN_PAYLOAD..=MAX_FRAME).contains(&len) && p + (FRAME_HEADER + len) as u64 <= file_len;
    let seq = u64::from_le_bytes(b[FRAME_HEADER + 1..].try_into().expect("8 bytes"));
    let plausible = match b[FRAME_HEADER] {
        1 => len >= MIN_PAYLOAD + 10 && last_seq.is_none_or(|s| seq > s),
        2 => len == MIN_PAYLOAD,
        _ => false,
    };
    Ok((fits && plausible).then_some(len))
}

/// Decodes the frame at `pos`: what it holds and its whole length, or why it is bad.
fn frame_at(w: &mut Window<'_>, id: u64, pos: u64) -> std::io::Result<Result<(Found, u64), FrameError>> {
    let Some((len, crc)) = w.get(pos, FRAME_HEADER)?.and_then(frame_header) else {
        return Ok(Err(FrameError::Short));
    };
    if len > MAX_FRAME {
        return Ok(Err(FrameError::Malformed));
    }
    // Checked against the file before reading: a damaged length must not cost memory.
    let Some(p) = w.get(pos + FRAME_HEADER as u64, len)? else { return Ok(Err(FrameError::Short)) };
    let frame_len = (FRAME_HEADER + len) as u64;
    Ok(match parse_payload(crc, p) {
        Ok(Payload::Delivery { seq, received_at_ns, endpoint, body_at }) => {
            let stored_len = (RECORD_OVERHEAD + endpoint.len() + (len - body_at)) as u64;
            let loc = Loc { segment: id, offset: pos, len: frame_len as u32 };
            Ok((Found::Delivery(Replayed { seq, received_at_ns, stored_len, loc }), frame_len))
        }
        Ok(Payload::Ack(a)) => Ok((Found::Ack(a), frame_len)),
        Err(e) => Err(e),
    })
}

/// A segment file read through a buffer of at least [`WINDOW`] bytes.
struct Window<'f> {
    file: &'f File,
    file_len: u64,
    /// File offset of `buf`.
    start: u64,
    buf: Vec<u8>,
}

impl Window<'_> {
    /// The `len` bytes at `pos`, or `None` past the end of the file.
    fn get(&mut self, pos: u64, len: usize) -> std::io::Result<Option<&[u8]>> {
        let Some(end) = pos.checked_add(len as u64).filter(|e| *e <= self.file_len) else {
            return Ok(None);
        };
        if pos < self.start || end > self.start + self.buf.len() as u64 {
            let want = len.max(WINDOW).min((self.file_len - pos) as usize);
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.start = pos;
        }
        let at = (pos - self.start) as usize;
        Ok(Some(&self.buf[at..at + len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::record::{encode_ack, encode_delivery};
    use std::io::Write;

    /// A segment file of `frames` deliveries (seq = index), an acknowledgement after the
    /// first; returns the file and each delivery frame's offset.
    fn segment(frames: u64) -> (tempfile::NamedTempFile, Vec<usize>) {
        let mut data = MAGIC.to_vec();
        let mut offsets = Vec::new();
        for seq in 0..frames {
            offsets.push(data.len());
            encode_delivery(&mut data, seq, seq, "e", format!("{{\"n\":{seq}}}").as_bytes());
            if seq == 0 {
                encode_ack(&mut data, 0);
            }
        }
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        (f, offsets)
    }

    fn damage(f: &tempfile::NamedTempFile, at: usize, xor: u8) {
        let mut b = [0u8];
        f.as_file().read_exact_at(&mut b, at as u64).unwrap();
        f.as_file().write_all_at(&[b[0] ^ xor], at as u64).unwrap();
    }

    fn seqs(s: &Scan) -> Vec<u64> {
        s.deliveries.iter().map(|d| d.seq).collect()
    }

    #[test]
    fn two_neighbouring_damaged_frames_are_one_stretch_counted_twice() {
        let (f, at) = segment(6);
        damage(&f, at[2] + 1, 0x55);
        damage(&f, at[3] + FRAME_HEADER + 3, 0x01);
        let s = scan_segment(f.as_file(), 0, None).unwrap();
        assert_eq!(seqs(&s), vec![0, 1, 4, 5]);
        assert_eq!(s.acked, Some(0));
        assert!(s.tail.is_none());
        let lost: u64 = s.damaged.iter().map(|d| d.lost(s.acked)).sum();
        assert_eq!(lost, 2);
    }

    #[test]
    fn damage_with_nothing_valid_after_it_is_a_torn_tail() {
        let (f, at) = segment(4);
        damage(&f, at[3] + FRAME_HEADER + 2, 0x01);
        let s = scan_segment(f.as_file(), 0, None).unwrap();
        assert_eq!(seqs(&s), vec![0, 1, 2]);
        assert!(s.damaged.is_empty());
        assert!(s.tail.as_ref().is_some_and(|t| t.torn));
        assert_eq!(s.valid_len, at[3] as u64);
        // Garbage appended after valid frames: also a tail, found without hashing much.
        let (f, at) = segment(2);
        f.as_file().write_all_at(&[0x01; 4096], f.as_file().metadata().unwrap().len()).unwrap();
        let s = scan_segment(f.as_file(), 0, None).unwrap();
        assert_eq!(seqs(&s), vec![0, 1]);
        assert!(s.tail.as_ref().is_some_and(|t| t.torn));
        assert!(s.valid_len > at[1] as u64);
    }

    #[test]
    fn lost_counts_missing_unacknowledged_neighbours_and_at_least_one() {
        let d = |before, after| Damage { offset: 0, len: 1, error: FrameError::Checksum, before, after };
        assert_eq!(d(Some(3), Some(7)).lost(None), 3);
        assert_eq!(d(Some(3), Some(7)).lost(Some(5)), 1);
        assert_eq!(d(Some(3), Some(4)).lost(None), 1);
        assert_eq!(d(None, Some(4)).lost(None), 1);
    }
}
