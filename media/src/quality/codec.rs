//! Codec figures of the E-model: the equipment impairment factor `Ie` (error-free coding)
//! and the packet-loss robustness factor `Bpl` (how gracefully quality falls with loss).
//!
//! The ITU-T values are from G.113 Appendix I (Table I.1 for `Ie`, Table I.3 for `Bpl`,
//! random loss). ITU-T gives no narrowband-scale values for Opus; [`CodecImpairment::OPUS`]
//! is an **assumption**, stated where it is defined.

/// A codec's E-model figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Equipment impairment factor `Ie` without loss (G.107 §7.4).
    pub ie: f64,
    /// Packet-loss robustness factor `Bpl` (G.107 §7.4).
    pub bpl: f64,
}

impl CodecImpairment {
    /// G.711 with packet loss concealment (G.711 Appendix I): `Ie` = 0, `Bpl` = 25.1
    /// (G.113 Appendix I, Tables I.1 and I.3).
    pub const G711_PLC: Self = Self { ie: 0.0, bpl: 25.1 };

    /// G.711 without concealment (silence inserted for lost packets): `Ie` = 0,
    /// `Bpl` = 4.3 (G.113 Appendix I, Table I.3).
    pub const G711_NO_PLC: Self = Self { ie: 0.0, bpl: 4.3 };

    /// G.729A with VAD: `Ie` = 11, `Bpl` = 19.0 (G.113 Appendix I, Tables I.1 and I.3).
    pub const G729A: Self = Self {
        ie: 11.0,
        bpl: 19.0,
    };

    /// Opus, 20 ms frames, wideband or better, with its own concealment and in-band FEC.
    ///
    /// **Assumption**: ITU-T publishes no `Ie`/`Bpl` for Opus on the narrowband G.107 scale
    /// (G.113 lists wideband `Ie,wb` for G.722/G.722.2 only). Error-free wideband Opus at
    /// 24–32 kbit/s scores at or above G.711 in listening tests, which saturates the
    /// narrowband scale, so `Ie` = 0; for loss we take G.711 with concealment, `Bpl` = 25.1,
    /// as a stand-in for a codec with a modern concealment (published measurements of Opus
    /// with WB-PESQ show a quality fall with random loss of the same order). Change it here
    /// when a standard value exists.
    pub const OPUS: Self = Self { ie: 0.0, bpl: 25.1 };
}
