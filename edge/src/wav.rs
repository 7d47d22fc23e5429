//! The edge's audio files: 48 kHz 16-bit PCM WAV, mono or stereo (averaged to mono) on
//! reading, mono on writing. The format itself is [`supernode_media::wav`]'s; this module
//! adds the edge's one rate and its error type.

use std::path::Path;

use supernode_media::wav;

use crate::EdgeError;

/// The edge's media clock: every file it reads or writes is at this rate.
const RATE: u32 = 48_000;

fn bad(path: &Path, why: impl std::fmt::Display) -> EdgeError {
    EdgeError::File(format!("{}: {why}", path.display()))
}

/// Reads a 48 kHz 16-bit PCM WAV file as mono samples.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, EdgeError> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, e))?;
    parse_wav(&bytes).map_err(|why| bad(path, why))
}

/// Parses WAV bytes (see [`read_wav`]); anything but 48 kHz is refused.
pub fn parse_wav(b: &[u8]) -> Result<Vec<i16>, String> {
    let w = wav::parse(b).map_err(|e| e.to_string())?;
    if w.rate != RATE {
        return Err(format!(
            "only 48 kHz WAV is supported (this one is {} Hz)",
            w.rate
        ));
    }
    Ok(w.samples)
}

/// The bytes of a 48 kHz mono 16-bit WAV file holding `pcm`.
pub fn wav_bytes(pcm: &[i16]) -> Vec<u8> {
    wav::encode(RATE, pcm)
}

/// Writes `pcm` as a 48 kHz mono 16-bit WAV file.
pub fn write_wav(path: &Path, pcm: &[i16]) -> Result<(), EdgeError> {
    std::fs::write(path, wav_bytes(pcm)).map_err(|e| bad(path, e))
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
        let err = parse_wav(&b).unwrap_err();
        assert!(
            err.contains("only 48 kHz") && err.contains("44100"),
            "{err}"
        );
        let mut b = wav_bytes(&pcm);
        b[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // absurd fmt length
        assert!(parse_wav(&b).is_err());
    }
}
