//! WAV files (RIFF, 16-bit PCM), read as mono and written as mono: the audio files of the
//! edge client (`--audio-in`/`--audio-out`) and of the benchmarks (speech clips, PESQ
//! inputs).
//!
//! ```
//! use supernode_media::wav::{Wav, encode, parse};
//! let bytes = encode(48_000, &[0, 1000, -1000]);
//! assert_eq!(parse(&bytes).unwrap(), Wav { rate: 48_000, samples: vec![0, 1000, -1000] });
//! assert!(parse(b"RIFF\0\0\0\0WAVE").is_err());
//! ```
//!
//! [`parse`] takes any rate and any channel count (averaging the channels to mono); a
//! caller that needs one rate checks [`Wav::rate`]. Malformed input is an error, never a
//! panic (fuzzed: `fuzz/fuzz_targets/wav.rs`).

use std::path::Path;

/// A malformed or unsupported WAV file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// Not a RIFF/WAVE file.
    #[error("not a RIFF/WAVE file")]
    NotWave,
    /// A chunk's length runs past the end of the address space.
    #[error("chunk length overflows")]
    ChunkOverflow,
    /// The `fmt ` chunk is shorter than 16 bytes.
    #[error("fmt chunk too short")]
    ShortFmt,
    /// A `data` chunk came before any `fmt ` chunk.
    #[error("data before fmt chunk")]
    DataBeforeFmt,
    /// Not 16-bit PCM (format tag, bits per sample).
    #[error("need 16-bit PCM, got format {format} with {bits} bits")]
    Unsupported {
        /// The format tag (1 = PCM, 0xFFFE = extensible).
        format: u16,
        /// Bits per sample.
        bits: u16,
    },
    /// Zero channels.
    #[error("no channels")]
    NoChannels,
    /// No `data` chunk.
    #[error("no data chunk")]
    NoData,
    /// Reading or writing the file (the caller names the file).
    #[error("{0}")]
    Io(String),
}

/// A mono 16-bit PCM signal and its sample rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    /// Samples per second.
    pub rate: u32,
    /// Samples (multi-channel files are averaged to mono).
    pub samples: Vec<i16>,
}

/// Parses WAV bytes: 16-bit PCM (format tag 1 or extensible), any rate, any channel count
/// (averaged to mono). A `data` chunk shorter than its header says is read as far as it goes.
pub fn parse(b: &[u8]) -> Result<Wav, WavError> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(WavError::NotWave);
    }
    let mut at = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= b.len() {
        let len = u32::from_le_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]) as usize;
        let start = at + 8;
        let end = start.checked_add(len).ok_or(WavError::ChunkOverflow)?;
        let body = &b[start..end.min(b.len())];
        match &b[at..at + 4] {
            b"fmt " => {
                if body.len() < 16 {
                    return Err(WavError::ShortFmt);
                }
                let le16 = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                fmt = Some((le16(0), le16(2), rate, le16(14)));
            }
            b"data" => {
                let (format, channels, rate, bits) = fmt.ok_or(WavError::DataBeforeFmt)?;
                if (format != 1 && format != 0xFFFE) || bits != 16 {
                    return Err(WavError::Unsupported { format, bits });
                }
                let ch = usize::from(channels);
                if ch == 0 {
                    return Err(WavError::NoChannels);
                }
                let samples = body
                    .chunks_exact(2 * ch)
                    .map(|frame| {
                        let sum: i32 = frame
                            .chunks_exact(2)
                            .map(|s| i32::from(i16::from_le_bytes([s[0], s[1]])))
                            .sum();
                        (sum / ch as i32) as i16
                    })
                    .collect();
                return Ok(Wav { rate, samples });
            }
            _ => {}
        }
        at = end.saturating_add(len & 1);
    }
    Err(WavError::NoData)
}

/// Reads a WAV file (see [`parse`]); errors do not name the file (the caller does).
pub fn read(path: &Path) -> Result<Wav, WavError> {
    let b = std::fs::read(path).map_err(|e| WavError::Io(e.to_string()))?;
    parse(&b)
}

/// The bytes of a mono 16-bit PCM WAV file of `samples` at `rate`.
pub fn encode(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + samples.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&rate.saturating_mul(2).to_le_bytes()); // byte rate
    b.extend_from_slice(&2u16.to_le_bytes()); // block align
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// Writes mono 16-bit `samples` at `rate` to `path`.
pub fn write(path: &Path, rate: u32, samples: &[i16]) -> Result<(), WavError> {
    std::fs::write(path, encode(rate, samples)).map_err(|e| WavError::Io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_rate() {
        let s: Vec<i16> = (0..1000).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        let w = parse(&encode(16_000, &s)).unwrap();
        assert_eq!((w.rate, w.samples), (16_000, s));
    }

    #[test]
    fn averages_stereo_to_mono() {
        let mut b = encode(48_000, &[100, 300, -50, -150]);
        b[22..24].copy_from_slice(&2u16.to_le_bytes()); // two channels
        assert_eq!(parse(&b).unwrap().samples, vec![200, -100]);
    }

    #[test]
    fn refuses_junk_with_its_reason() {
        assert_eq!(parse(b"RIFF\0\0\0\0WAVX"), Err(WavError::NotWave));
        assert_eq!(parse(b"RIFF"), Err(WavError::NotWave));
        assert_eq!(parse(&encode(8000, &[1, 2])[..30]), Err(WavError::ShortFmt));
        let mut b = encode(8000, &[1, 2]);
        b[34..36].copy_from_slice(&8u16.to_le_bytes()); // 8 bits per sample
        assert_eq!(parse(&b), Err(WavError::Unsupported { format: 1, bits: 8 }));
        let mut b = encode(8000, &[1, 2]);
        b[22..24].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(parse(&b), Err(WavError::NoChannels));
        let mut b = encode(8000, &[1, 2]);
        b[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // absurd fmt length
        assert!(parse(&b).is_err());
        assert_eq!(parse(&encode(8000, &[])[..36]), Err(WavError::NoData));
    }
}
