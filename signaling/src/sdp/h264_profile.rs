//! H.264 `profile-level-id` (RFC 6184 §8.1): which profile and level a payload type means,
//! and whether a stream of a given profile and level may be sent to a receiver that offered
//! it (§8.2.2).
//!
//! The three bytes are `profile_idc`, `profile-iop` (the constraint flags
//! `constraint_set0..5`, then two reserved zero bits) and `level_idc`. One profile can be
//! written several ways (Constrained Baseline is `42e0..`, `4240..`, `4de0..`, `58c0..`, ...),
//! so two payload types are compared by their [`H264Profile`], never by their hex. Level 1b
//! has two encodings: `level_idc` 11 with `constraint_set3_flag` in the Baseline, Main and
//! Extended profiles, `level_idc` 9 in the High profiles.

use std::fmt;

/// An H.264 profile, as RFC 6184 Table 5 (and its later Constrained High) names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum H264Profile {
    /// Constrained Baseline (what WebRTC endpoints all decode; openh264 encodes it).
    ConstrainedBaseline,
    /// Baseline.
    Baseline,
    /// Main.
    Main,
    /// Extended.
    Extended,
    /// High.
    High,
    /// Constrained High (High with `constraint_set4` and `constraint_set5`; Safari's `640c..`).
    ConstrainedHigh,
    /// High 10.
    High10,
    /// High 4:2:2.
    High422,
    /// High 4:4:4 Predictive.
    High444,
    /// High 10 Intra.
    High10Intra,
    /// High 4:2:2 Intra.
    High422Intra,
    /// High 4:4:4 Intra.
    High444Intra,
    /// CAVLC 4:4:4 Intra.
    Cavlc444Intra,
}

impl H264Profile {
    /// A lower-case human name ("constrained baseline").
    pub fn name(self) -> &'static str {
        match self {
            Self::ConstrainedBaseline => "constrained baseline",
            Self::Baseline => "baseline",
            Self::Main => "main",
            Self::Extended => "extended",
            Self::High => "high",
            Self::ConstrainedHigh => "constrained high",
            Self::High10 => "high 10",
            Self::High422 => "high 4:2:2",
            Self::High444 => "high 4:4:4 predictive",
            Self::High10Intra => "high 10 intra",
            Self::High422Intra => "high 4:2:2 intra",
            Self::High444Intra => "high 4:4:4 intra",
            Self::Cavlc444Intra => "cavlc 4:4:4 intra",
        }
    }

    /// A canonical `(profile_idc, profile-iop)` for this profile.
    pub fn canonical_idc_iop(self) -> (u8, u8) {
        match self {
            Self::ConstrainedBaseline => (0x42, 0xe0),
            Self::Baseline => (0x42, 0x00),
            Self::Main => (0x4d, 0x00),
            Self::Extended => (0x58, 0x00),
            Self::High => (0x64, 0x00),
            Self::ConstrainedHigh => (0x64, 0x0c),
            Self::High10 => (0x6e, 0x00),
            Self::High422 => (0x7a, 0x00),
            Self::High444 => (0xf4, 0x00),
            Self::High10Intra => (0x6e, 0x10),
            Self::High422Intra => (0x7a, 0x10),
            Self::High444Intra => (0xf4, 0x10),
            Self::Cavlc444Intra => (0x2c, 0x10),
        }
    }
}

impl fmt::Display for H264Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RFC 6184 Table 5 (plus Constrained High): `profile_idc`, then the bits of `profile-iop`
/// that must have a given value (`mask`) and that value. The RFC writes these as bit
/// patterns, quoted beside each row (`x` = either).
const PROFILE_PATTERNS: [(u8, u8, u8, H264Profile); 16] = [
    (
        0x42,
        0b0100_1111,
        0b0100_0000,
        H264Profile::ConstrainedBaseline,
    ), // x1xx0000
    (
        0x4d,
        0b1000_1111,
        0b1000_0000,
        H264Profile::ConstrainedBaseline,
    ), // 1xxx0000
    (
        0x58,
        0b1100_1111,
        0b1100_0000,
        H264Profile::ConstrainedBaseline,
    ), // 11xx0000
    (0x42, 0b0100_1111, 0b0000_0000, H264Profile::Baseline), // x0xx0000
    (0x58, 0b1100_1111, 0b1000_0000, H264Profile::Baseline), // 10xx0000
    (0x4d, 0b1010_1111, 0b0000_0000, H264Profile::Main),     // 0x0x0000
    (0x58, 0b1100_1111, 0b0000_0000, H264Profile::Extended), // 00xx0000
    (0x64, 0b1111_1111, 0b0000_0000, H264Profile::High),     // 00000000
    (0x64, 0b1111_1111, 0b0000_1100, H264Profile::ConstrainedHigh), // 00001100
    (0x6e, 0b1111_1111, 0b0000_0000, H264Profile::High10),   // 00000000
    (0x7a, 0b1111_1111, 0b0000_0000, H264Profile::High422),  // 00000000
    (0xf4, 0b1111_1111, 0b0000_0000, H264Profile::High444),  // 00000000
    (0x6e, 0b1111_1111, 0b0001_0000, H264Profile::High10Intra), // 00010000
    (0x7a, 0b1111_1111, 0b0001_0000, H264Profile::High422Intra), // 00010000
    (0xf4, 0b1111_1111, 0b0001_0000, H264Profile::High444Intra), // 00010000
    (0x2c, 0b1111_1111, 0b0001_0000, H264Profile::Cavlc444Intra), // 00010000
];

/// `constraint_set3_flag` within `profile-iop`: marks level 1b in Baseline/Main/Extended.
const CONSTRAINT_SET3: u8 = 0b0001_0000;

/// An H.264 level, ordered by capability (1 < 1b < 1.1 < ... < 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[allow(missing_docs)] // the variant names are the level numbers
pub enum H264Level {
    L1,
    L1b,
    L1_1,
    L1_2,
    L1_3,
    L2,
    L2_1,
    L2_2,
    L3,
    L3_1,
    L3_2,
    L4,
    L4_1,
    L4_2,
    L5,
    L5_1,
    L5_2,
    L6,
    L6_1,
    L6_2,
}

impl H264Level {
    const ALL: [(u8, H264Level); 19] = [
        (10, Self::L1),
        (11, Self::L1_1),
        (12, Self::L1_2),
        (13, Self::L1_3),
        (20, Self::L2),
        (21, Self::L2_1),
        (22, Self::L2_2),
        (30, Self::L3),
        (31, Self::L3_1),
        (32, Self::L3_2),
        (40, Self::L4),
        (41, Self::L4_1),
        (42, Self::L4_2),
        (50, Self::L5),
        (51, Self::L5_1),
        (52, Self::L5_2),
        (60, Self::L6),
        (61, Self::L6_1),
        (62, Self::L6_2),
    ];

    /// The `level_idc` of this level (level 1b has none of its own; see the module docs).
    fn level_idc(self) -> Option<u8> {
        Self::ALL
            .iter()
            .find(|(_, l)| *l == self)
            .map(|(idc, _)| *idc)
    }
}

impl fmt::Display for H264Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level_idc() {
            None => f.write_str("1b"),
            Some(idc) if idc % 10 == 0 => write!(f, "{}", idc / 10),
            Some(idc) => write!(f, "{}.{}", idc / 10, idc % 10),
        }
    }
}

/// The three bytes of an H.264 `profile-level-id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileLevelId {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// `profile-iop`: `constraint_set0_flag` in the top bit down to `constraint_set5_flag`.
    pub profile_iop: u8,
    /// `level_idc`.
    pub level_idc: u8,
}

/// A `profile-level-id` value that is not six hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("profile-level-id is not six hexadecimal digits")]
pub struct ProfileLevelIdError;

impl ProfileLevelId {
    /// What RFC 6184 §8.1 says to infer when `profile-level-id` is absent: Baseline, level 1.
    pub const ABSENT: Self = Self {
        profile_idc: 0x42,
        profile_iop: 0x00,
        level_idc: 10,
    };

    /// Parses six hexadecimal digits (either case).
    pub fn parse(s: &str) -> Result<Self, ProfileLevelIdError> {
        let b = s.as_bytes();
        if b.len() != 6 || !b.iter().all(u8::is_ascii_hexdigit) {
            return Err(ProfileLevelIdError);
        }
        let byte = |i: usize| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| ProfileLevelIdError);
        Ok(Self {
            profile_idc: byte(0)?,
            profile_iop: byte(2)?,
            level_idc: byte(4)?,
        })
    }

    /// The profile these bytes name, `None` for a combination Table 5 does not define.
    pub fn profile(self) -> Option<H264Profile> {
        PROFILE_PATTERNS
            .iter()
            .find(|(idc, mask, value, _)| {
                *idc == self.profile_idc && self.profile_iop & mask == *value
            })
            .map(|(_, _, _, p)| *p)
    }

    /// The level these bytes name, `None` for an undefined `level_idc`.
    pub fn level(self) -> Option<H264Level> {
        let legacy_1b = matches!(self.profile_idc, 0x42 | 0x4d | 0x58)
            && self.level_idc == 11
            && self.profile_iop & CONSTRAINT_SET3 != 0;
        if legacy_1b || self.level_idc == 9 {
            return Some(H264Level::L1b);
        }
        H264Level::ALL
            .iter()
            .find(|(idc, _)| *idc == self.level_idc)
            .map(|(_, l)| *l)
    }

    /// The same profile bytes at another level (level 1b written the way this profile
    /// writes it).
    pub fn with_level(self, level: H264Level) -> Self {
        let legacy = matches!(self.profile_idc, 0x42 | 0x4d | 0x58);
        match level.level_idc() {
            Some(level_idc) => Self {
                profile_iop: if legacy {
                    self.profile_iop & !CONSTRAINT_SET3
                } else {
                    self.profile_iop
                },
                level_idc,
                ..self
            },
            None if legacy => Self {
                profile_iop: self.profile_iop | CONSTRAINT_SET3,
                level_idc: 11,
                ..self
            },
            None => Self {
                level_idc: 9,
                ..self
            },
        }
    }
}

impl fmt::Display for ProfileLevelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}{:02x}{:02x}",
            self.profile_idc, self.profile_iop, self.level_idc
        )
    }
}

/// The H.264 stream the supernode delivers toward a browser: its profile and (highest)
/// level. An answer accepts H.264 only when the browser offered this profile at this level
/// or higher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct H264Delivery {
    /// The profile of every H.264 stream sent to the browser.
    pub profile: H264Profile,
    /// The highest level of those streams.
    pub level: H264Level,
}

impl H264Delivery {
    /// Constrained Baseline level 3.1 (up to 1280×720 at 30 frames/s): what the edge
    /// client's openh264 encoder produces and every WebRTC browser offers (`42e01f`).
    pub const CONSTRAINED_BASELINE_3_1: Self = Self {
        profile: H264Profile::ConstrainedBaseline,
        level: H264Level::L3_1,
    };
}

/// Why an offered H.264 payload type cannot carry the delivered stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum H264Mismatch {
    /// A different profile (or one Table 5 does not define).
    #[error("profile {offered} is not the delivered {delivered}")]
    Profile {
        /// What the offer's payload type says.
        offered: ProfileLevelId,
        /// The delivered profile.
        delivered: H264Profile,
    },
    /// The right profile, but the receiver's level is below the delivered one.
    #[error("level of {offered} is below the delivered {delivered}")]
    Level {
        /// What the offer's payload type says.
        offered: ProfileLevelId,
        /// The delivered level.
        delivered: H264Level,
    },
}

impl H264Delivery {
    /// Whether a receiver that offered `offered` may be sent this stream (RFC 6184 §8.2.2:
    /// same profile; the offer's level is the highest it decodes, with or without
    /// `level-asymmetry-allowed`). On success gives the `profile-level-id` to answer: the
    /// offer's profile bytes at the delivered level.
    pub fn answer_for(self, offered: ProfileLevelId) -> Result<ProfileLevelId, H264Mismatch> {
        if offered.profile() != Some(self.profile) {
            return Err(H264Mismatch::Profile {
                offered,
                delivered: self.profile,
            });
        }
        match offered.level() {
            Some(level) if level >= self.level => Ok(offered.with_level(self.level)),
            _ => Err(H264Mismatch::Level {
                offered,
                delivered: self.level,
            }),
        }
    }

    /// The answer to an H.264 payload type of a **send-only** offer (a WHIP publisher, a
    /// browser that only sends): the supernode receives that stream and forwards it to
    /// receivers that were answered this delivery, so the offer must be of this profile at
    /// this level **or lower** (what it sends is decodable wherever the delivery is), and the
    /// answer keeps the offered level. GStreamer's openh264, for one, offers `42c00c`
    /// (Constrained Baseline 1.2) for small pictures.
    pub fn answer_for_sender(
        self,
        offered: ProfileLevelId,
    ) -> Result<ProfileLevelId, H264Mismatch> {
        if offered.profile() != Some(self.profile) {
            return Err(H264Mismatch::Profile {
                offered,
                delivered: self.profile,
            });
        }
        match offered.level() {
            Some(level) if level <= self.level => Ok(offered),
            _ => Err(H264Mismatch::Level {
                offered,
                delivered: self.level,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ProfileLevelId {
        ProfileLevelId::parse(s).unwrap()
    }

    #[test]
    fn a_sender_may_offer_a_lower_level_and_keeps_it() {
        let d = H264Delivery::CONSTRAINED_BASELINE_3_1;
        // Sending 1.2 is decodable where 3.1 is; the answer keeps 1.2.
        assert_eq!(d.answer_for_sender(p("42c00c")), Ok(p("42c00c")));
        assert_eq!(d.answer_for_sender(p("42e01f")), Ok(p("42e01f")));
        // Above the delivered level, or another profile: refused.
        assert!(matches!(
            d.answer_for_sender(p("42e034")),
            Err(H264Mismatch::Level { .. })
        ));
        assert!(matches!(
            d.answer_for_sender(p("64001f")),
            Err(H264Mismatch::Profile { .. })
        ));
        // A receiver must take at least the delivered level.
        assert!(d.answer_for(p("42c00c")).is_err());
    }

    #[test]
    fn browser_profiles() {
        use H264Level::*;
        use H264Profile::*;
        for (hex, profile, level) in [
            ("42e01f", ConstrainedBaseline, L3_1),
            ("42001f", Baseline, L3_1),
            ("4d001f", Main, L3_1),
            ("640032", High, L5),
            ("64001f", High, L3_1),
            ("640c34", ConstrainedHigh, L5_2),
            ("640c1f", ConstrainedHigh, L3_1),
            ("42e034", ConstrainedBaseline, L5_2),
            ("42E01F", ConstrainedBaseline, L3_1),
            ("4de01f", ConstrainedBaseline, L3_1),
            ("58c01f", ConstrainedBaseline, L3_1),
            ("58801f", Baseline, L3_1),
            ("58001f", Extended, L3_1),
            ("f4001f", High444, L3_1),
            ("2c101f", Cavlc444Intra, L3_1),
        ] {
            assert_eq!(p(hex).profile(), Some(profile), "{hex}");
            assert_eq!(p(hex).level(), Some(level), "{hex}");
        }
        // Undefined combinations.
        assert_eq!(p("58401f").profile(), None);
        assert_eq!(p("64101f").profile(), None);
        assert_eq!(p("42e0ff").level(), None);
        assert_eq!(p("000000").profile(), None);
    }

    #[test]
    fn level_1b_both_encodings_and_order() {
        assert_eq!(p("42f00b").level(), Some(H264Level::L1b));
        assert_eq!(p("42e00b").level(), Some(H264Level::L1_1));
        assert_eq!(p("640009").level(), Some(H264Level::L1b));
        // set3 is a don't-care bit of Constrained Baseline: 1b does not change the profile.
        assert_eq!(
            p("42f00b").profile(),
            Some(H264Profile::ConstrainedBaseline)
        );
        assert!(H264Level::L1 < H264Level::L1b && H264Level::L1b < H264Level::L1_1);
        assert_eq!(p("42e01f").with_level(H264Level::L1b), p("42f00b"));
        assert_eq!(p("42f00b").with_level(H264Level::L3_1), p("42e01f"));
        assert_eq!(p("640c34").with_level(H264Level::L1b), p("640c09"));
        assert_eq!(H264Level::L1b.to_string(), "1b");
        assert_eq!(H264Level::L3_1.to_string(), "3.1");
        assert_eq!(H264Level::L5.to_string(), "5");
    }

    #[test]
    fn parse_rejects_non_hex() {
        for bad in ["", "42e01", "42e01f0", "42e01g", "+2e01f", "42e01\u{e9}"] {
            assert_eq!(
                ProfileLevelId::parse(bad),
                Err(ProfileLevelIdError),
                "{bad:?}"
            );
        }
        assert_eq!(p("42e01f").to_string(), "42e01f");
    }

    #[test]
    fn delivery_matches_profile_and_level() {
        let cb31 = H264Delivery::CONSTRAINED_BASELINE_3_1;
        // Same profile, written differently; the answer keeps the offer's bytes.
        assert_eq!(cb31.answer_for(p("42e01f")), Ok(p("42e01f")));
        assert_eq!(cb31.answer_for(p("4de01f")), Ok(p("4de01f")));
        // Higher level offered: the answer asks for the delivered level.
        assert_eq!(cb31.answer_for(p("42e034")), Ok(p("42e01f")));
        // Baseline, Main, High are other profiles, even though they could decode CB.
        for other in ["42001f", "4d001f", "640032", "640c34"] {
            assert!(matches!(
                cb31.answer_for(p(other)),
                Err(H264Mismatch::Profile { .. })
            ));
        }
        // Level too low.
        assert!(matches!(
            cb31.answer_for(p("42e01e")),
            Err(H264Mismatch::Level { .. })
        ));
        let ch52 = H264Delivery {
            profile: H264Profile::ConstrainedHigh,
            level: H264Level::L5_2,
        };
        assert_eq!(ch52.answer_for(p("640c34")), Ok(p("640c34")));
        assert_eq!(
            ProfileLevelId::ABSENT.profile(),
            Some(H264Profile::Baseline)
        );
        assert_eq!(ProfileLevelId::ABSENT.level(), Some(H264Level::L1));
    }
}
