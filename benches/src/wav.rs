//! Minimal WAV (RIFF, 16-bit PCM, mono) reading and writing for the benches' audio files.

use std::path::Path;

/// A mono 16-bit PCM signal and its sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    /// Samples per second.
    pub rate: u32,
    /// Samples (multi-channel files are averaged to mono).
    pub samples: Vec<i16>,
}

/// Parses WAV bytes: 16-bit PCM, any rate, any channel count (averaged to mono).
pub fn parse(b: &[u8]) -> Result<Wav, String> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut at = 12;
    let mut fmt = None;
    while at + 8 <= b.len() {
        let len = u32_at(at + 4) as usize;
        let body = at + 8;
        let end = body.checked_add(len).ok_or("chunk length overflows")?;
        match &b[at..at + 4] {
            b"fmt " if len >= 16 && end <= b.len() => {
                // format tag, channels, rate, bits per sample
                fmt = Some((
                    u16_at(body),
                    u16_at(body + 2),
                    u32_at(body + 4),
                    u16_at(body + 14),
                ));
            }
            b"data" => {
                let (tag, ch, rate, bits) = fmt.ok_or("data before fmt")?;
                if tag != 1 || bits != 16 || ch == 0 {
                    return Err(format!("need 16-bit PCM, got format {tag}, {bits} bits"));
                }
                let data = &b[body..end.min(b.len())];
                let ch = usize::from(ch);
                let samples = data
                    .chunks_exact(2 * ch)
                    .map(|f| {
                        let sum: i32 = f
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
        at = end + (len & 1);
    }
    Err("no data chunk".into())
}

/// Reads a WAV file (see [`parse`]).
pub fn read(path: &Path) -> Result<Wav, String> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&b).map_err(|e| format!("{}: {e}", path.display()))
}

/// WAV bytes of mono 16-bit `samples` at `rate`.
pub fn encode(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + samples.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// Writes mono 16-bit `samples` at `rate` to `path`.
pub fn write(path: &Path, rate: u32, samples: &[i16]) -> std::io::Result<()> {
    std::fs::write(path, encode(rate, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_junk() {
        let s: Vec<i16> = (0..1000).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        let w = parse(&encode(16_000, &s)).unwrap();
        assert_eq!((w.rate, w.samples), (16_000, s));
        assert!(parse(b"RIFF\0\0\0\0WAVX").is_err());
        assert!(parse(&encode(8000, &[1, 2])[..30]).is_err());
    }
}
