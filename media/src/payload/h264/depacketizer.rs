//! [`H264Depacketizer`]: the payloads of one frame in, one Annex B access unit out.

use super::super::PayloadError;
use super::{FU_A, NAL_IDR, NAL_PPS, NAL_SPS, STAP_A, nal_type};

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// What [`H264Depacketizer::depacketize`] rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessUnitInfo {
    /// The access unit holds an IDR picture and the decoder has SPS and PPS for it (from
    /// this access unit or kept from an earlier one): it decodes on its own.
    pub keyframe: bool,
    /// NAL units written.
    pub nal_units: usize,
    /// The kept SPS/PPS were put in front because the IDR came without them.
    pub parameter_sets_inserted: bool,
}

/// Rebuilds access units from RFC 6184 packetization-mode 1 payloads.
///
/// Give it the packets of one frame (the frame buffer groups them), as sequence number and
/// payload in any order: it puts them in order, checks that none is missing, rejoins FU-A fragments, unpacks STAP-A aggregates, writes NAL units behind 4-byte start
/// codes, and keeps the latest SPS and PPS, which it puts in front of an IDR that arrives
/// without them. A fragment missing from an FU-A chain is [`PayloadError::MissingFragment`]
/// (nothing half-built reaches the decoder).
#[derive(Debug, Clone)]
pub struct H264Depacketizer {
    sps: Vec<u8>,
    pps: Vec<u8>,
    max_access_unit: usize,
}

impl Default for H264Depacketizer {
    fn default() -> Self {
        Self::new(4 << 20)
    }
}

impl H264Depacketizer {
    /// A depacketizer refusing access units above `max_access_unit` bytes.
    pub fn new(max_access_unit: usize) -> Self {
        Self {
            sps: Vec::new(),
            pps: Vec::new(),
            max_access_unit,
        }
    }

    /// The latest sequence parameter set seen (NAL unit without start code).
    pub fn sps(&self) -> Option<&[u8]> {
        (!self.sps.is_empty()).then_some(&self.sps[..])
    }

    /// The latest picture parameter set seen.
    pub fn pps(&self) -> Option<&[u8]> {
        (!self.pps.is_empty()).then_some(&self.pps[..])
    }

    /// Rebuilds one access unit into `out` (replacing its contents) from the packets of one
    /// frame given as `(RTP sequence number, payload)` in any order. Duplicates are
    /// ignored; a hole in the sequence numbers is [`PayloadError::SequenceGap`] (or
    /// [`PayloadError::MissingFragment`] when it shows inside an FU-A chain).
    pub fn depacketize<'a, I>(
        &mut self,
        packets: I,
        out: &mut Vec<u8>,
    ) -> Result<AccessUnitInfo, PayloadError>
    where
        I: IntoIterator<Item = (u16, &'a [u8])>,
    {
        let mut sorted: Vec<(u16, &'a [u8])> = packets.into_iter().collect();
        let Some(&(base, _)) = sorted.first() else {
            return Err(PayloadError::Empty);
        };
        // Order by signed distance from the first packet: correct across the 16-bit wrap.
        sorted.sort_by_key(|(seq, _)| seq.wrapping_sub(base) as i16);
        sorted.dedup_by_key(|(seq, _)| *seq);
        if sorted.windows(2).any(|w| w[1].0 != w[0].0.wrapping_add(1)) {
            // A hole: say which kind, for the caller's statistics.
            return Err(if self.gap_in_fu(&sorted) {
                PayloadError::MissingFragment
            } else {
                PayloadError::SequenceGap
            });
        }
        self.depacketize_ordered(sorted.iter().map(|(_, p)| *p), out)
    }

    /// Whether a sequence hole falls inside an FU-A chain (start seen, end not yet).
    fn gap_in_fu(&self, sorted: &[(u16, &[u8])]) -> bool {
        let mut open = false;
        for w in sorted.windows(2) {
            if let [h, fu, ..] = w[0].1 {
                if nal_type(*h) == FU_A {
                    open = fu & 0x40 == 0;
                } else {
                    open = false;
                }
            }
            if w[1].0 != w[0].0.wrapping_add(1) {
                let next_is_cont =
                    matches!(w[1].1, [h, fu, ..] if nal_type(*h) == FU_A && fu & 0x80 == 0);
                return open || next_is_cont;
            }
        }
        false
    }

    /// Rebuilds one access unit from payloads already in sequence order with no hole (what
    /// the video frame buffer hands out).
    pub fn depacketize_ordered<'a, I>(
        &mut self,
        payloads: I,
        out: &mut Vec<u8>,
    ) -> Result<AccessUnitInfo, PayloadError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        out.clear();
        let mut st = State::default();
        let mut fu_open = false;
        for p in payloads {
            let (&hdr, body) = p.split_first().ok_or(PayloadError::Empty)?;
            if hdr & 0x80 != 0 {
                return Err(PayloadError::H264Malformed("forbidden_zero_bit set"));
            }
            let t = nal_type(hdr);
            if t != FU_A && fu_open {
                return Err(PayloadError::MissingFragment);
            }
            match t {
                1..=23 => self.push_nal(p, out, &mut st)?,
                STAP_A => {
                    let mut rest = body;
                    if rest.is_empty() {
                        return Err(PayloadError::H264Malformed("empty STAP-A"));
                    }
                    while !rest.is_empty() {
                        let [a, b, tail @ ..] = rest else {
                            return Err(PayloadError::Truncated);
                        };
                        let len = usize::from(u16::from_be_bytes([*a, *b]));
                        if len == 0 || len > tail.len() {
                            return Err(PayloadError::H264Malformed("STAP-A unit size"));
                        }
                        self.push_nal(&tail[..len], out, &mut st)?;
                        rest = &tail[len..];
                    }
                }
                FU_A => {
                    let [fu, data @ ..] = body else {
                        return Err(PayloadError::Truncated);
                    };
                    let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                    if start && end {
                        return Err(PayloadError::FuStartAndEnd);
                    }
                    let orig = (hdr & 0xe0) | nal_type(*fu);
                    if start {
                        if fu_open {
                            return Err(PayloadError::MissingFragment);
                        }
                        fu_open = true;
                        st.fu_begin = out.len();
                        st.fu_type = orig;
                        out.extend_from_slice(&START_CODE);
                        out.push(orig);
                    } else if !fu_open || orig != st.fu_type {
                        return Err(PayloadError::MissingFragment);
                    }
                    out.extend_from_slice(data);
                    if out.len() > self.max_access_unit {
                        return Err(PayloadError::TooLarge(self.max_access_unit));
                    }
                    if end {
                        fu_open = false;
                        let begin = st.fu_begin + START_CODE.len();
                        if matches!(nal_type(orig), NAL_SPS | NAL_PPS) {
                            let nal = out[begin..].to_vec();
                            st.note(orig, Some(&nal), self);
                        } else {
                            st.note(orig, None, self);
                        }
                        st.nals += 1;
                    }
                }
                t => return Err(PayloadError::NalType(t)),
            }
        }
        if fu_open {
            return Err(PayloadError::MissingFragment);
        }
        if st.nals == 0 {
            return Err(PayloadError::Empty);
        }
        let mut info = AccessUnitInfo {
            keyframe: false,
            nal_units: st.nals,
            parameter_sets_inserted: false,
        };
        if st.idr {
            if (!st.sps || !st.pps) && self.sps().is_some() && self.pps().is_some() {
                let mut prefix = Vec::with_capacity(8 + self.sps.len() + self.pps.len());
                prefix.extend_from_slice(&START_CODE);
                prefix.extend_from_slice(&self.sps);
                prefix.extend_from_slice(&START_CODE);
                prefix.extend_from_slice(&self.pps);
                out.splice(0..0, prefix);
                info.parameter_sets_inserted = true;
                info.nal_units += 2;
            }
            info.keyframe = self.sps().is_some() && self.pps().is_some();
        }
        Ok(info)
    }

    fn push_nal(
        &mut self,
        nal: &[u8],
        out: &mut Vec<u8>,
        st: &mut State,
    ) -> Result<(), PayloadError> {
        if nal[0] & 0x80 != 0 {
            return Err(PayloadError::H264Malformed("forbidden_zero_bit set"));
        }
        if out.len() + 4 + nal.len() > self.max_access_unit {
            return Err(PayloadError::TooLarge(self.max_access_unit));
        }
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
        st.note(nal[0], Some(nal), self);
        st.nals += 1;
        Ok(())
    }
}

/// Per-access-unit bookkeeping.
#[derive(Default)]
struct State {
    idr: bool,
    sps: bool,
    pps: bool,
    nals: usize,
    fu_begin: usize,
    fu_type: u8,
}

impl State {
    fn note(&mut self, header: u8, nal: Option<&[u8]>, d: &mut H264Depacketizer) {
        match nal_type(header) {
            NAL_IDR => self.idr = true,
            NAL_SPS => {
                self.sps = true;
                if let Some(n) = nal.filter(|n| *n != d.sps.as_slice()) {
                    d.sps.clear();
                    d.sps.extend_from_slice(n);
                }
            }
            NAL_PPS => {
                self.pps = true;
                if let Some(n) = nal.filter(|n| *n != d.pps.as_slice()) {
                    d.pps.clear();
                    d.pps.extend_from_slice(n);
                }
            }
            _ => {}
        }
    }
}
