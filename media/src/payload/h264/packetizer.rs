//! [`H264Packetizer`]: one Annex B access unit in, RTP payloads of at most an MTU out.

use super::super::PayloadError;
use super::{FU_A, STAP_A, annex_b};

/// Splits access units into RFC 6184 packetization-mode 1 payloads.
///
/// NAL units that fit are sent whole; consecutive small ones (SPS, PPS, small slices) are
/// aggregated into one STAP-A when they fit together; a NAL unit larger than the MTU is cut
/// into FU-A fragments of nearly equal size. The payloads are handed to a callback with the
/// marker bit to set (true on the last payload of the access unit). No allocation per
/// packet: aggregates and fragments are built in one scratch buffer, single NAL units are
/// borrowed from the input.
#[derive(Debug, Clone)]
pub struct H264Packetizer {
    mtu: usize,
    scratch: Vec<u8>,
}

impl H264Packetizer {
    /// A packetizer whose payloads never exceed `mtu` bytes (the room left for the RTP
    /// payload; 1200 is a safe choice on the Internet). At least 3 bytes.
    pub fn new(mtu: usize) -> Result<Self, PayloadError> {
        if mtu < 3 {
            return Err(PayloadError::MtuTooSmall(mtu));
        }
        Ok(Self {
            mtu,
            scratch: Vec::with_capacity(mtu),
        })
    }

    /// The payload size limit.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Packetizes one access unit, calling `emit(payload, marker)` for each RTP payload in
    /// order. Returns the number of payloads. An access unit with no NAL unit gives none.
    /// A NAL unit with the forbidden bit or a type of 0 or 24..=31 is an error (payloads
    /// emitted before it have been emitted).
    pub fn packetize(
        &mut self,
        access_unit: &[u8],
        mut emit: impl FnMut(&[u8], bool),
    ) -> Result<usize, PayloadError> {
        let mtu = self.mtu;
        let mut nals = annex_b(access_unit).peekable();
        let mut count = 0;
        while let Some(nal) = nals.next() {
            check_nal(nal)?;
            if nal.len() > mtu {
                self.fragment(nal, nals.peek().is_none(), &mut emit, &mut count);
                continue;
            }
            // Aggregate with the following NAL units while they fit in one STAP-A.
            let fits = |stap_len: usize, next: &[u8]| stap_len + 2 + next.len() <= mtu;
            match nals.peek() {
                Some(next) if fits(1 + 2 + nal.len(), next) => {
                    self.scratch.clear();
                    self.scratch.push(0);
                    let (mut f, mut nri) = (0u8, 0u8);
                    let mut add = |s: &mut Vec<u8>, n: &[u8]| {
                        f |= n[0] & 0x80;
                        nri = nri.max(n[0] & 0x60);
                        s.extend_from_slice(&(n.len() as u16).to_be_bytes());
                        s.extend_from_slice(n);
                    };
                    add(&mut self.scratch, nal);
                    while let Some(next) = nals.peek() {
                        if !fits(self.scratch.len(), next) {
                            break;
                        }
                        check_nal(next)?;
                        add(&mut self.scratch, next);
                        nals.next();
                    }
                    self.scratch[0] = f | nri | STAP_A;
                    emit(&self.scratch, nals.peek().is_none());
                }
                _ => emit(nal, nals.peek().is_none()),
            }
            count += 1;
        }
        Ok(count)
    }

    fn fragment(
        &mut self,
        nal: &[u8],
        last_nal: bool,
        emit: &mut impl FnMut(&[u8], bool),
        count: &mut usize,
    ) {
        let header = nal[0];
        let body = &nal[1..];
        let room = self.mtu - 2;
        let pieces = body.len().div_ceil(room);
        let size = body.len().div_ceil(pieces);
        let n = body.chunks(size).len();
        for (i, chunk) in body.chunks(size).enumerate() {
            let start = i == 0;
            let end = i + 1 == n;
            self.scratch.clear();
            self.scratch.push((header & 0xe0) | FU_A);
            self.scratch
                .push(u8::from(start) << 7 | u8::from(end) << 6 | (header & 0x1f));
            self.scratch.extend_from_slice(chunk);
            emit(&self.scratch, end && last_nal);
            *count += 1;
        }
    }
}

/// Rejects what an encoder never emits: the forbidden bit, type 0, and types 24..=31 (they
/// name RTP payload structures and would be misread as STAP/FU on the other side).
fn check_nal(nal: &[u8]) -> Result<(), PayloadError> {
    if nal[0] & 0x80 != 0 {
        return Err(PayloadError::H264Malformed("forbidden_zero_bit set"));
    }
    let t = nal[0] & 0x1f;
    if t == 0 || t >= 24 {
        return Err(PayloadError::NalType(t));
    }
    Ok(())
}
