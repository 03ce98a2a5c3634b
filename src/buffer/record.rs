//! The record format inside a segment: frames of `len: u32 LE`, `crc32: u32 LE` (of the
//! payload), then `len` bytes of payload:
//!
//! - delivery: `1u8`, `seq: u64`, `received_at_ns: u64`, `endpoint_len: u16`, endpoint, body;
//! - acknowledgement: `2u8`, `through: u64` — every delivery with `seq ≤ through` is done
//!   (exported, or evicted in drop-oldest mode).
//!
//! Decoding never panics: a damaged frame is an error the caller counts and skips.

use bytes::Bytes;

/// Frame header: payload length + CRC.
pub(super) const FRAME_HEADER: usize = 8;
/// Payload bytes of a delivery besides endpoint and body: kind, seq, receipt time, endpoint length.
const DELIVERY_FIXED: usize = 1 + 8 + 8 + 2;
/// Bytes a delivery takes on disk besides its endpoint and body.
pub(super) const RECORD_OVERHEAD: usize = FRAME_HEADER + DELIVERY_FIXED;
const KIND_DELIVERY: u8 = 1;
const KIND_ACK: u8 = 2;
/// Largest frame accepted when reading; larger means a corrupt length.
pub(super) const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Where a delivery's frame is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Loc {
    /// Segment id.
    pub segment: u64,
    /// Offset of the frame in the segment file.
    pub offset: u64,
    /// Length of the whole frame.
    pub len: u32,
}

/// A decoded delivery frame.
pub(super) struct Frame {
    pub seq: u64,
    pub received_at_ns: u64,
    pub endpoint: String,
    pub body: Bytes,
}

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(super) enum FrameError {
    #[error("frame shorter than its header")]
    Short,
    #[error("checksum mismatch")]
    Checksum,
    #[error("malformed payload")]
    Malformed,
}

/// Appends one delivery frame to `out`.
pub(super) fn encode_delivery(out: &mut Vec<u8>, seq: u64, received_at_ns: u64, endpoint: &str, body: &[u8]) {
    let ep = &endpoint.as_bytes()[..endpoint.len().min(u16::MAX as usize)];
    let len = DELIVERY_FIXED + ep.len() + body.len();
    let start = out.len();
    out.reserve(FRAME_HEADER + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(KIND_DELIVERY);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&received_at_ns.to_le_bytes());
    out.extend_from_slice(&(ep.len() as u16).to_le_bytes());
    out.extend_from_slice(ep);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends one acknowledgement frame to `out`.
pub(super) fn encode_ack(out: &mut Vec<u8>, through: u64) {
    let mut payload = [0u8; 9];
    payload[0] = KIND_ACK;
    payload[1..].copy_from_slice(&through.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// A frame's payload, split but not copied.
pub(super) enum Payload<'a> {
    Delivery { seq: u64, received_at_ns: u64, endpoint: &'a [u8], body_at: usize },
    Ack(u64),
}

/// Checks a payload's CRC and splits it (never panics).
pub(super) fn parse_payload(crc: u32, p: &[u8]) -> Result<Payload<'_>, FrameError> {
    if crc32fast::hash(p) != crc {
        return Err(FrameError::Checksum);
    }
    let u64_at = |i: usize| p.get(i..i + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    match p.first() {
        Some(&KIND_DELIVERY) => {
            let seq = u64_at(1).ok_or(FrameError::Malformed)?;
            let received_at_ns = u64_at(9).ok_or(FrameError::Malformed)?;
            let n = p
                .get(17..19)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
                .ok_or(FrameError::Malformed)?;
            let endpoint = p.get(19..19 + n).ok_or(FrameError::Malformed)?;
            Ok(Payload::Delivery { seq, received_at_ns, endpoint, body_at: 19 + n })
        }
        Some(&KIND_ACK) if p.len() == 9 => Ok(Payload::Ack(u64_at(1).ok_or(FrameError::Malformed)?)),
        _ => Err(FrameError::Malformed),
    }
}

/// The length and CRC of the frame starting `b`, if `b` holds a whole header.
pub(super) fn frame_header(b: &[u8]) -> Option<(usize, u32)> {
    let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?);
    Some((len, crc))
}

/// Decodes the delivery frame at the start of `run` (a buffer read from a segment); the body is
/// a slice of `run`, not a copy.
pub(super) fn decode_delivery(run: &Bytes) -> Result<Frame, FrameError> {
    let (len, crc) = frame_header(run).ok_or(FrameError::Short)?;
    let p = run.get(FRAME_HEADER..FRAME_HEADER + len).ok_or(FrameError::Short)?;
    match parse_payload(crc, p)? {
        Payload::Delivery { seq, received_at_ns, endpoint, body_at } => Ok(Frame {
            seq,
            received_at_ns,
            endpoint: String::from_utf8_lossy(endpoint).into_owned(),
            body: run.slice(FRAME_HEADER + body_at..FRAME_HEADER + len),
        }),
        Payload::Ack(_) => Err(FrameError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_damage() {
        let mut buf = Vec::new();
        encode_delivery(&mut buf, 7, 9, "ep", b"{\"a\":1}");
        let run = Bytes::from(buf.clone());
        let f = decode_delivery(&run).unwrap();
        assert_eq!(
            (f.seq, f.received_at_ns, f.endpoint.as_str(), &f.body[..]),
            (7, 9, "ep", &b"{\"a\":1}"[..])
        );
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(decode_delivery(&Bytes::from(bad)).is_err(), "flipped byte {i} went unnoticed");
        }
        for n in 0..buf.len() {
            assert!(decode_delivery(&Bytes::copy_from_slice(&buf[..n])).is_err());
        }
        let mut ack = Vec::new();
        encode_ack(&mut ack, 3);
        assert_eq!(decode_delivery(&Bytes::from(ack)).err(), Some(FrameError::Malformed));
    }
}
