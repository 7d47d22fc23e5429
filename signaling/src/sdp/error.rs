//! Why an SDP offer could not be read or answered at all.
//!
//! Only a malformed offer is an error. An m-line the supernode cannot serve (no Opus, no
//! deliverable H.264, a data channel, ...) is not an error: the answer rejects it with port 0
//! and says why in [`RejectReason`](super::RejectReason).

/// An SDP offer that is malformed, too big, or unanswerable as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The offer is larger than [`MAX_SDP_BYTES`](super::MAX_SDP_BYTES).
    #[error("SDP is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Size of the offer in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The offer has more lines than [`MAX_SDP_LINES`](super::MAX_SDP_LINES).
    #[error("SDP has more than {max} lines")]
    TooManyLines {
        /// The limit.
        max: usize,
    },
    /// The offer has more m-lines than [`MAX_MEDIA_SECTIONS`](super::MAX_MEDIA_SECTIONS).
    #[error("line {line}: more than {max} m-lines")]
    TooManyMediaSections {
        /// Line of the first m-line over the limit (1-based).
        line: usize,
        /// The limit.
        max: usize,
    },
    /// One line of the offer is wrong.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number in the offer.
        line: usize,
        /// What is wrong with it.
        reason: LineError,
    },
    /// A line the offer must have is absent.
    #[error("SDP has no {what}")]
    Missing {
        /// The missing line, e.g. `"o= line"`.
        what: &'static str,
    },
    /// The offer has no m-line, so there is nothing to answer.
    #[error("SDP offer has no m-line")]
    NoMedia,
    /// A BUNDLE group names a mid that no m-line has.
    #[error("line {line}: BUNDLE group names mid {mid:?}, which no m-line has")]
    UnknownBundleMid {
        /// Line of the `a=group` attribute.
        line: usize,
        /// The unknown mid.
        mid: String,
    },
    /// The transport the answer would use has no `a=ice-ufrag`/`a=ice-pwd` (neither in its
    /// m-section nor at session level).
    #[error("line {line}: m-line has no ICE credentials (a=ice-ufrag and a=ice-pwd)")]
    MissingIceCredentials {
        /// Line of the m-line.
        line: usize,
    },
    /// The transport the answer would use has no `a=fingerprint`, so DTLS could not be
    /// authenticated.
    #[error("line {line}: m-line has no DTLS fingerprint (a=fingerprint)")]
    MissingFingerprint {
        /// Line of the m-line.
        line: usize,
    },
    /// `a=setup:holdconn`: the offerer wants no DTLS connection.
    #[error("line {line}: a=setup:holdconn, no DTLS connection can be made")]
    SetupHoldconn {
        /// Line of the m-line.
        line: usize,
    },
    /// The caller's [`AnswerParams`](super::AnswerParams) cannot be written into an SDP
    /// (a programming error, not the browser's).
    #[error("invalid answer parameters: {what}")]
    InvalidParams {
        /// Which parameter.
        what: &'static str,
    },
    /// The offer is ICE-lite too; with both sides lite nobody checks connectivity.
    #[error("offer is ICE-lite; the supernode is ICE-lite as well, so ICE cannot complete")]
    OfferIsIceLite,
}

/// What is wrong with one line (see [`SdpError::Line`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// Bytes that are not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// Not of the form `<letter>=<value>`.
    #[error("not a `<type>=<value>` line")]
    NotTypeValue,
    /// A type letter SDP does not define (RFC 8866 §5).
    #[error("unknown line type {0:?}")]
    UnknownType(char),
    /// The first line is not `v=0`.
    #[error("SDP must start with v=0")]
    NotVersionZero,
    /// A line that may appear once appears again, or one that belongs at session level
    /// appears in an m-section (or the other way round).
    #[error("{what} is misplaced or repeated")]
    Misplaced {
        /// The line or attribute, e.g. `"o="` or `"a=setup"`.
        what: &'static str,
    },
    /// A line or attribute whose value does not have the expected syntax.
    #[error("malformed {what}: expected {expected}")]
    Malformed {
        /// The line or attribute, e.g. `"m="` or `"a=rtpmap"`.
        what: &'static str,
        /// The syntax that was expected.
        expected: &'static str,
    },
    /// Two m-lines share one mid.
    #[error("duplicate mid {0:?}")]
    DuplicateMid(String),
    /// Two `a=rtpmap` (or `a=fmtp`) lines for one payload type in one m-section.
    #[error("second {what} for payload type {pt}")]
    DuplicatePayloadType {
        /// `"a=rtpmap"` or `"a=fmtp"`.
        what: &'static str,
        /// The payload type.
        pt: u8,
    },
    /// Two `a=extmap` lines with one id in one m-section (RFC 8285 §5).
    #[error("second a=extmap with id {0}")]
    DuplicateExtmapId(u8),
}

impl LineError {
    /// Shorthand for [`LineError::Malformed`].
    pub(crate) fn malformed(what: &'static str, expected: &'static str) -> Self {
        Self::Malformed { what, expected }
    }
}
