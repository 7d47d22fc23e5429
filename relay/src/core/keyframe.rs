//! Where a decoder can start: whether an RTP payload opens an H.264 keyframe (RFC 6184
//! packetization), the only point at which a receiver may be moved from one simulcast layer
//! to another ([`super::layers`]).
//!
//! A packet opens a keyframe when it is, or begins with, a parameter set or an IDR slice:
//! a single NAL unit of type 7 (SPS), 8 (PPS) or 5 (IDR); a STAP-A (24) holding one of those;
//! or an FU-A (28) whose start bit is set on an IDR. A browser sends SPS and PPS (in a STAP-A)
//! just before the IDR of the same frame, so a switch on that packet carries the new
//! layer's parameter sets with it (each layer has its own resolution, hence its own SPS).
//! Anything malformed is not a keyframe.

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_STAP_A: u8 = 24;
const NAL_FU_A: u8 = 28;

fn opens(nal_type: u8) -> bool {
    matches!(nal_type, NAL_IDR | NAL_SPS | NAL_PPS)
}

/// Whether the H.264 RTP payload `payload` opens a keyframe (see the module docs).
#[inline]
pub fn h264_keyframe_start(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        NAL_STAP_A => {
            // [size:16][NAL]... from byte 1.
            let mut at = 1;
            while at + 2 < payload.len() {
                let size = usize::from(u16::from_be_bytes([payload[at], payload[at + 1]]));
                let Some(&nal) = payload.get(at + 2) else {
                    return false;
                };
                if size == 0 {
                    return false;
                }
                if opens(nal & 0x1f) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        NAL_FU_A => payload
            .get(1)
            .is_some_and(|&h| h & 0x80 != 0 && h & 0x1f == NAL_IDR),
        t => opens(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_nal_units() {
        assert!(h264_keyframe_start(&[0x65, 1, 2])); // IDR
        assert!(h264_keyframe_start(&[0x67, 0x42])); // SPS
        assert!(h264_keyframe_start(&[0x68, 0xce])); // PPS
        assert!(!h264_keyframe_start(&[0x41, 1, 2])); // non-IDR slice
        assert!(!h264_keyframe_start(&[0x06, 1])); // SEI
        assert!(!h264_keyframe_start(&[]));
    }

    #[test]
    fn stap_a_with_parameter_sets_or_idr() {
        // STAP-A: SEI (2 bytes), then SPS (3 bytes).
        assert!(h264_keyframe_start(&[
            0x78, 0, 2, 0x06, 0, 0, 3, 0x67, 1, 2
        ]));
        // STAP-A of two non-IDR slices.
        assert!(!h264_keyframe_start(&[0x78, 0, 2, 0x41, 0, 0, 2, 0x41, 0]));
        // Truncated or zero-sized aggregation units.
        assert!(!h264_keyframe_start(&[0x78, 0]));
        assert!(!h264_keyframe_start(&[0x78, 0, 0, 0x65]));
    }

    #[test]
    fn fu_a_start_of_an_idr_only() {
        assert!(h264_keyframe_start(&[0x7c, 0x85, 9])); // start, IDR
        assert!(!h264_keyframe_start(&[0x7c, 0x05, 9])); // middle of an IDR
        assert!(!h264_keyframe_start(&[0x7c, 0x45, 9])); // end
        assert!(!h264_keyframe_start(&[0x7c, 0x81, 9])); // start of a non-IDR slice
        assert!(!h264_keyframe_start(&[0x7c]));
    }
}
