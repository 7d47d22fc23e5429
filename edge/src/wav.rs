//! Minimal WAV (RIFF, 16-bit PCM) reading and writing for the edge's audio files.
//!
//! Reading accepts 16-bit PCM at 48 kHz, mono or stereo (stereo is averaged to mono);
//! anything else is an [`EdgeError::File`]. Writing produces 48 kHz mono 16-bit PCM.

use std::io::{Read, Write};
use std::path::Path;

use crate::EdgeError;

fn bad(path: &Path, why: &str) -> EdgeError {
    EdgeError::File(format!("{}: {why}", path.display()))
}

/// Reads a 48 kHz 16-bit PCM WAV file as mono samples.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, EdgeError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| bad(path, &e.to_string()))?;
    parse_wav(&bytes).map_err(|why| bad(path, why))
}

/// Parses WAV bytes (see [`read_wav`]).
pub fn parse_wav(b: &[u8]) -> Result<Vec<i16>, &'static str> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file");
    }
    let mut at = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let len = u32::from_le_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]) as usize;
        let body_start = at + 8;
        let body_end = body_start
            .checked_add(len)
            .ok_or("chunk length overflows")?;
        let body = &b[body_start..body_end.min(b.len())];
        if id == b"fmt " {
            if body.len() < 16 {
                return Err("fmt chunk too short");
            }
            let le16 = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            fmt = Some((le16(0), le16(2), rate, le16(14)));
        } else if id == b"data" {
            let (format, channels, rate, bits) = fmt.ok_or("data before fmt chunk")?;
            if format != 1 && format != 0xFFFE {
                return Err("only PCM WAV is supported");
            }
            if bits != 16 {
                return Err("only 16-bit WAV is supported");
            }
            if rate != 48_000 {
                return Err("only 48 kHz WAV is supported");
            }
            let samples = body
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]));
            return match channels {
                1 => Ok(samples.collect()),
                2 => {
                    let v: Vec<i16> = samples.collect();
                    Ok(v.chunks_exact(2)
                        .map(|c| ((i32::from(c[0]) + i32::from(c[1])) / 2) as i16)
                        .collect())
                }
                _ => Err("only mono or stereo WAV is supported"),
            };
        }
        at = body_end + (len & 1);
    }
    Err("no data chunk")
}

/// The bytes of a 48 kHz mono 16-bit WAV file holding `pcm`.
pub fn wav_bytes(pcm: &[i16]) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + pcm.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&48_000u32.to_le_bytes());
    b.extend_from_slice(&96_000u32.to_le_bytes()); // byte rate
    b.extend_from_slice(&2u16.to_le_bytes()); // block align
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// Writes `pcm` as a 48 kHz mono 16-bit WAV file.
pub fn write_wav(path: &Path, pcm: &[i16]) -> Result<(), EdgeError> {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(&wav_bytes(pcm)))
        .map_err(|e| bad(path, &e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_files() {
        let pcm: Vec<i16> = (0..1000).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        assert_eq!(parse_wav(&wav_bytes(&pcm)).unwrap(), pcm);
        assert!(parse_wav(b"RIFF").is_err());
        let mut b = wav_bytes(&pcm);
        b[24..28].copy_from_slice(&44_100u32.to_le_bytes());
        assert_eq!(parse_wav(&b), Err("only 48 kHz WAV is supported"));
        let mut b = wav_bytes(&pcm);
        b[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // absurd fmt length
        assert!(parse_wav(&b).is_err());
    }
}
