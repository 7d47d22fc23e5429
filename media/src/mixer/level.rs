//! Audio levels as RFC 6464 carries them: −dBov from 0 (loudest) to 127 (silence), plus a
//! voice-activity flag.

/// Level at or below which (i.e. at least this loud, in −dBov) a frame counts as voice.
pub const VOICE_MAX_LEVEL: u8 = 50;

/// One frame's audio level (RFC 6464 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioLevel {
    /// Level in −dBov, 0..=127 (127 is silence or quieter than −127 dBov).
    pub level: u8,
    /// Voice activity.
    pub voice: bool,
}

impl AudioLevel {
    /// Silence.
    pub const SILENT: Self = Self {
        level: 127,
        voice: false,
    };

    /// Measures a frame of 16-bit samples. 0 dBov is the RMS of a full-scale square wave
    /// (so a full-scale sine is −3 dBov); voice is flagged at −50 dBov or louder.
    pub fn measure(frame: &[i16]) -> Self {
        if frame.is_empty() {
            return Self::SILENT;
        }
        let sum: f64 = frame.iter().map(|&s| (s as f64) * (s as f64)).sum();
        let rms = (sum / frame.len() as f64).sqrt();
        if rms <= 0.0 {
            return Self::SILENT;
        }
        let dbov = 20.0 * (rms / 32768.0).log10();
        let level = (-dbov).round().clamp(0.0, 127.0) as u8;
        Self {
            level,
            voice: level <= VOICE_MAX_LEVEL,
        }
    }

    /// The level in dBov (0 or negative).
    pub fn dbov(self) -> f64 {
        -(self.level as f64)
    }

    /// The one-byte RFC 6464 extension element body: `V` bit then 7-bit level.
    pub fn to_byte(self) -> u8 {
        ((self.voice as u8) << 7) | (self.level & 0x7f)
    }

    /// Parses the one-byte extension element body.
    pub fn from_byte(b: u8) -> Self {
        Self {
            level: b & 0x7f,
            voice: b & 0x80 != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amp: f64) -> Vec<i16> {
        (0..480)
            .map(|i| (amp * (i as f64 * 0.1).sin()) as i16)
            .collect()
    }

    #[test]
    fn full_scale_sine_is_minus_three_dbov_and_silence_is_127() {
        let l = AudioLevel::measure(&sine(32767.0));
        assert_eq!(l.level, 3);
        assert!(l.voice);
        assert_eq!(AudioLevel::measure(&[0; 480]), AudioLevel::SILENT);
        assert_eq!(AudioLevel::measure(&[]), AudioLevel::SILENT);
        // −40 dB below full scale: −43 dBov.
        assert_eq!(AudioLevel::measure(&sine(327.67)).level, 43);
        // Quiet hiss is not voice.
        assert!(!AudioLevel::measure(&sine(20.0)).voice);
    }

    #[test]
    fn extension_byte_round_trips() {
        for b in [0u8, 0x7f, 0x80, 0xff, 0x2a, 0xaa] {
            assert_eq!(AudioLevel::from_byte(b).to_byte(), b);
        }
        assert_eq!(
            AudioLevel {
                level: 30,
                voice: true
            }
            .to_byte(),
            0x80 | 30
        );
    }
}
