//! Call quality on the ITU-T G.107 E-model scale: a transmission rating `R` (0–100) from
//! delay, packet loss and the codec, and the mean opinion score (MOS) it predicts.
//!
//! Drive it: describe the call with [`EModel`] (one-way mouth-to-ear delay, packet loss and
//! the codec's [`CodecImpairment`]; every other G.107 parameter keeps its default), read
//! [`EModel::r`] and turn it into a MOS with [`r_to_mos`]. A listening-quality score measured
//! against a clean reference (PESQ MOS-LQO) enters as an equipment impairment through
//! [`mos_to_r`] and [`EModel::with_measured_impairment`].
//!
//! ```
//! use std::time::Duration;
//! use supernode_media::quality::{CodecImpairment, EModel, r_to_mos};
//!
//! let clean = EModel::new(CodecImpairment::G711_PLC);
//! assert!((clean.r() - 93.2).abs() < 0.1);
//! let call = clean.with_delay(Duration::from_millis(150)).with_loss_pct(2.0);
//! assert!(r_to_mos(call.r()) < r_to_mos(clean.r()));
//! ```
//!
//! - [`emodel`]: the rating `R = Ro − Is − Id − Ie,eff + A` (G.107 §7).
//! - [`mos`]: `R` ↔ MOS (G.107 Annex B) and its numeric inverse.
//! - [`estimate`]: a call's MOS from measured loss, jitter-buffer delay, RTT and codec.
//! - [`codec`]: codec impairment `Ie` and packet-loss robustness `Bpl` (G.113 Appendix I and
//!   the assumed Opus values).
//!
//! Nothing here depends on a codec implementation: it is arithmetic on figures a caller
//! measured.

pub mod codec;
pub mod emodel;
pub mod estimate;
pub mod mos;

pub use codec::CodecImpairment;
pub use emodel::EModel;
pub use estimate::{CallFigures, OPUS_DELAY_MS, jitter_buffer_for_jitter_ms};
pub use mos::{mos_to_r, r_to_mos};
