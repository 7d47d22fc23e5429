//! One participant's outgoing RTP stream of mixed audio: its SSRC, sequence numbers and
//! timestamps, and the RFC 6464 audio-level element of each packet.

use crate::ids::{Pt, Ssrc};
use crate::mixer::AudioLevel;
use crate::packet::rtp::{ExtensionForm, RtpError, RtpHeader};

/// Largest mixed RTP packet (header and an Opus packet of at most 1275 bytes).
pub(super) const MAX_PACKET: usize = 1400;

/// The header state of one outgoing stream. Its extension element is allocated once, so
/// writing a packet allocates nothing.
#[derive(Debug, Clone)]
pub(super) struct OutStream {
    header: RtpHeader,
    level_ext: bool,
}

impl OutStream {
    /// A stream with `ssrc`; the first sequence number and timestamp derive from it (the
    /// SSRC is random per participant, so they are too).
    pub(super) fn new(ssrc: Ssrc, pt: Pt, level_ext_id: Option<u8>) -> Self {
        let extensions = level_ext_id
            .map(|id| vec![(id, vec![AudioLevel::SILENT.to_byte()])])
            .unwrap_or_default();
        Self {
            header: RtpHeader {
                marker: true,
                payload_type: pt,
                sequence_number: (ssrc.0 >> 7) as u16,
                timestamp: ssrc.0.rotate_left(13),
                ssrc,
                csrcs: Vec::new(),
                extensions,
                extension_form: ExtensionForm::OneByte,
                padding: 0,
            },
            level_ext: level_ext_id.is_some(),
        }
    }

    /// The stream's SSRC.
    pub(super) fn ssrc(&self) -> Ssrc {
        self.header.ssrc
    }

    /// Writes the next packet (`payload` of `samples` 48 kHz samples, the mix at `level`)
    /// into `out` and advances the stream; returns its length.
    pub(super) fn write(
        &mut self,
        payload: &[u8],
        samples: u32,
        level: AudioLevel,
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        if self.level_ext {
            self.header.extensions[0].1[0] = level.to_byte();
        }
        let n = self.header.write(payload, out)?;
        self.header.marker = false;
        self.header.sequence_number = self.header.sequence_number.wrapping_add(1);
        self.header.timestamp = self.header.timestamp.wrapping_add(samples);
        Ok(n)
    }

    /// Moves the timestamp on by `samples` without a packet (time the mixer skipped).
    pub(super) fn skip(&mut self, samples: u32) {
        self.header.timestamp = self.header.timestamp.wrapping_add(samples);
    }
}
