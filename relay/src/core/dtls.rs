//! DTLS-SRTP (RFC 5764) of a browser transport, over the sans-IO [`dimpl`] crate (the DTLS of
//! str0m): the relay is always the DTLS **server** (it answers offers with
//! `a=setup:passive`), with one self-signed ECDSA P-256 certificate per relay
//! ([`DtlsIdentity`]), whose SHA-256 fingerprint goes into every SDP answer. The browser's
//! certificate must hash to the fingerprint of its offer ([`Fingerprint`]); the keying
//! material exported at the end of the handshake keys the transport's in-place SRTP sessions
//! (`AES_CM_128_HMAC_SHA1_80`, `AEAD_AES_128_GCM` or `AEAD_AES_256_GCM`, whichever the browser
//! offered and dimpl preferred).
//!
//! Drive a [`DtlsServer`] with [`DtlsServer::handle_datagram`] and
//! [`DtlsServer::handle_timeout`], then [`DtlsServer::poll`] until it says
//! [`DtlsPoll::Idle`]: it hands out datagrams to send and, once, the keys. Nothing here
//! touches a socket or a clock.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dimpl::{Config, Dtls, DtlsCertificate, Output};
use sha2::{Digest, Sha256};
use supernode_media::srtp::{SrtpKey, SrtpProfile};

use super::srtp::LegSrtpKeys;

/// A SHA-256 certificate fingerprint (RFC 8122).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

/// Why a fingerprint string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// Only `sha-256` fingerprints are made and checked.
    #[error("unsupported fingerprint hash {0:?} (only sha-256)")]
    Algorithm(String),
    /// Not 32 colon-separated hex bytes.
    #[error("malformed sha-256 fingerprint")]
    Malformed,
}

impl Fingerprint {
    /// The SHA-256 of a DER certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Parses SDP's `a=fingerprint` value parts: `algorithm` (`sha-256`, any case) and
    /// `value` (`AB:CD:…`, any case).
    pub fn parse(algorithm: &str, value: &str) -> Result<Self, FingerprintError> {
        if !algorithm.eq_ignore_ascii_case("sha-256") {
            return Err(FingerprintError::Algorithm(algorithm.to_owned()));
        }
        let mut out = [0u8; 32];
        let mut n = 0;
        for part in value.trim().split(':') {
            if n == 32 || part.len() != 2 {
                return Err(FingerprintError::Malformed);
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| FingerprintError::Malformed)?;
            n += 1;
        }
        if n != 32 {
            return Err(FingerprintError::Malformed);
        }
        Ok(Self(out))
    }

    /// The SDP form: upper-case hex bytes separated by colons.
    pub fn to_sdp(&self) -> String {
        let mut s = String::with_capacity(95);
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            s.push_str(&format!("{b:02X}"));
        }
        s
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_sdp())
    }
}

/// Why a certificate could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate generation failed: {0}")]
pub struct IdentityError(String);

/// A relay's DTLS identity: its self-signed certificate, private key, fingerprint and the
/// DTLS configuration every browser transport of the relay shares.
pub struct DtlsIdentity {
    cert: DtlsCertificate,
    fingerprint: Fingerprint,
    config: Arc<Config>,
}

impl fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// How long a DTLS handshake may take before the transport is given up (the browser has
/// retransmitted its flights several times by then).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

impl DtlsIdentity {
    /// A fresh self-signed ECDSA P-256 certificate (random serial, valid for 30 days): what a
    /// relay makes once at start. Uses the operating system's randomness.
    pub fn generate() -> Result<Self, IdentityError> {
        let err = |e: rcgen::Error| IdentityError(e.to_string());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "supernode relay");
        params.distinguished_name = dn;
        // A random serial: browsers (Firefox) refuse two certificates with one issuer and
        // serial, across processes and machines.
        let mut serial = [0u8; 16];
        serial.copy_from_slice(&Sha256::digest(key.serialize_der())[..16]);
        serial[0] &= 0x7f;
        params.serial_number = Some(serial.to_vec().into());
        let now = std::time::SystemTime::now();
        params.not_before = (now - Duration::from_secs(86_400)).into();
        params.not_after = (now + Duration::from_secs(30 * 86_400)).into();
        let cert = params.self_signed(&key).map_err(err)?;
        Self::from_der(cert.der().to_vec(), key.serialize_der())
    }

    /// An identity from a DER certificate and its PKCS#8 DER private key.
    pub fn from_der(certificate: Vec<u8>, private_key: Vec<u8>) -> Result<Self, IdentityError> {
        let config = Config::builder()
            .handshake_timeout(HANDSHAKE_TIMEOUT)
            .build()
            .map_err(|e| IdentityError(e.to_string()))?;
        Ok(Self {
            fingerprint: Fingerprint::of_der(&certificate),
            cert: DtlsCertificate {
                certificate,
                private_key,
            },
            config: Arc::new(config),
        })
    }

    /// The certificate's SHA-256 fingerprint (for `a=fingerprint:sha-256 …`).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The certificate and key (a client in tests and benches uses one of its own).
    pub fn certificate(&self) -> &DtlsCertificate {
        &self.cert
    }

    /// The shared DTLS configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.clone()
    }
}

/// Where a transport's handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsPhase {
    /// Waiting for or in the handshake.
    Handshaking,
    /// Done, certificate checked, keys exported.
    Connected,
    /// Failed (bad fingerprint, a fatal alert, a timeout): the transport must go.
    Failed(DtlsFailure),
}

/// Why a handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsFailure {
    /// The client's certificate does not hash to the offer's fingerprint.
    FingerprintMismatch,
    /// The handshake ended without a client certificate or without SRTP keys.
    Incomplete,
    /// A fatal DTLS error (alert, timeout, protocol error).
    Fatal,
    /// The peer closed the association (close_notify).
    Closed,
}

/// What [`DtlsServer::poll`] gives.
#[derive(Debug)]
pub enum DtlsPoll<'a> {
    /// A datagram to send to the peer.
    Send(&'a [u8]),
    /// The handshake completed: key the transport's SRTP with these (once).
    Keys(LegSrtpKeys),
    /// Nothing more now.
    Idle,
}

/// The DTLS server of one browser transport.
pub struct DtlsServer {
    dtls: Dtls,
    expected: Fingerprint,
    phase: DtlsPhase,
    cert_ok: bool,
    keys: Option<LegSrtpKeys>,
    timeout: Option<Instant>,
    /// Whether keys were handed out (they are handed out once).
    keyed: bool,
}

impl fmt::Debug for DtlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsServer")
            .field("phase", &self.phase)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DtlsServer {
    /// A server for a peer whose certificate must hash to `expected`.
    pub fn new(identity: &DtlsIdentity, expected: Fingerprint, now: Instant) -> Self {
        let dtls = Dtls::new_auto(identity.config(), identity.cert.clone(), now);
        Self {
            dtls,
            expected,
            phase: DtlsPhase::Handshaking,
            cert_ok: false,
            keys: None,
            timeout: None,
            keyed: false,
        }
    }

    /// Where the handshake is.
    pub fn phase(&self) -> DtlsPhase {
        self.phase
    }

    /// When [`DtlsServer::handle_timeout`] is next due (retransmission, handshake deadline).
    pub fn timeout(&self) -> Option<Instant> {
        match self.phase {
            DtlsPhase::Failed(_) => None,
            _ => self.timeout,
        }
    }

    fn fail(&mut self, why: DtlsFailure) {
        if !matches!(self.phase, DtlsPhase::Failed(_)) {
            self.phase = DtlsPhase::Failed(why);
        }
    }

    /// Feeds one DTLS datagram from the peer, received at `now`.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) {
        if matches!(self.phase, DtlsPhase::Failed(_)) {
            return;
        }
        if self.dtls.handle_timeout(now).is_err() || self.dtls.handle_packet(data).is_err() {
            self.fail(DtlsFailure::Fatal);
        }
    }

    /// Advances timers (retransmits the last flight, gives up after the handshake deadline).
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.phase, DtlsPhase::Failed(_)) {
            return;
        }
        if self.dtls.handle_timeout(now).is_err() {
            self.fail(DtlsFailure::Fatal);
        }
    }

    /// The next thing to do; `buf` is where a datagram is written (1500 bytes is enough).
    /// Call until [`DtlsPoll::Idle`] after every `handle_*`.
    pub fn poll<'a>(&mut self, buf: &'a mut [u8]) -> DtlsPoll<'a> {
        loop {
            if matches!(self.phase, DtlsPhase::Failed(_)) {
                return DtlsPoll::Idle;
            }
            // The output borrows only `buf`: a packet is returned as a fresh slice of it.
            let out = self.dtls.poll_output(&mut *buf);
            match out {
                Output::Packet(p) => {
                    let n = p.len();
                    let start = p.as_ptr() as usize - buf.as_ptr() as usize;
                    return DtlsPoll::Send(&buf[start..start + n]);
                }
                Output::Timeout(t) => {
                    self.timeout = Some(t);
                    if self.phase == DtlsPhase::Connected
                        && !self.keyed
                        && let Some(k) = self.keys.take()
                    {
                        self.keyed = true;
                        return DtlsPoll::Keys(k);
                    }
                    return DtlsPoll::Idle;
                }
                Output::PeerCert(der) => {
                    if Fingerprint::of_der(der) == self.expected {
                        self.cert_ok = true;
                    } else {
                        self.fail(DtlsFailure::FingerprintMismatch);
                    }
                }
                Output::KeyingMaterial(km, profile) => match keys_from_material(&km, profile) {
                    Some(k) => self.keys = Some(k),
                    None => self.fail(DtlsFailure::Incomplete),
                },
                Output::Connected => {
                    if self.cert_ok {
                        self.phase = DtlsPhase::Connected;
                    } else {
                        self.fail(DtlsFailure::Incomplete);
                    }
                }
                Output::CloseNotify => self.fail(DtlsFailure::Closed),
                Output::BufferTooSmall { .. } => self.fail(DtlsFailure::Fatal),
                Output::ApplicationData(_) => {} // no data channels: ignored
                _ => {}
            }
        }
    }
}

/// Splits RFC 5764 §4.2 keying material — client key, server key, client salt, server salt —
/// into the relay's (server's) inbound and outbound keys.
fn keys_from_material(km: &[u8], profile: dimpl::SrtpProfile) -> Option<LegSrtpKeys> {
    let p = match profile {
        dimpl::SrtpProfile::AES128_CM_SHA1_80 => SrtpProfile::Aes128CmHmacSha1_80,
        dimpl::SrtpProfile::AEAD_AES_128_GCM => SrtpProfile::AeadAes128Gcm,
        dimpl::SrtpProfile::AEAD_AES_256_GCM => SrtpProfile::AeadAes256Gcm,
        _ => return None,
    };
    let (k, s) = (p.key_len(), p.salt_len());
    if km.len() < 2 * (k + s) {
        return None;
    }
    let client_key = &km[..k];
    let server_key = &km[k..2 * k];
    let client_salt = &km[2 * k..2 * k + s];
    let server_salt = &km[2 * k + s..2 * (k + s)];
    Some(LegSrtpKeys {
        inbound: SrtpKey::new(p, client_key, client_salt).ok()?,
        outbound: SrtpKey::new(p, server_key, server_salt).ok()?,
    })
}

/// The client side of DTLS-SRTP, for tests, the fuzz target, benches and a load generator's
/// browser-like peer (the same crate as the relay's server, in the client role): it splits
/// the keying material the other way round.
pub struct DtlsClient {
    dtls: Dtls,
    keys: Option<LegSrtpKeys>,
    peer_fingerprint: Option<Fingerprint>,
    connected: bool,
    failed: bool,
    timeout: Option<Instant>,
}

impl fmt::Debug for DtlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsClient")
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl DtlsClient {
    /// A client with its own identity (its fingerprint is what its offer would carry).
    pub fn new(identity: &DtlsIdentity, now: Instant) -> Self {
        let mut dtls = Dtls::new_12(identity.config(), identity.cert.clone(), now);
        dtls.set_active(true);
        Self {
            dtls,
            keys: None,
            peer_fingerprint: None,
            connected: false,
            failed: false,
            timeout: None,
        }
    }

    /// Feeds a datagram from the server.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) {
        if self.dtls.handle_timeout(now).is_err() || self.dtls.handle_packet(data).is_err() {
            self.failed = true;
        }
    }

    /// Advances timers (and starts the handshake: the first call sends the ClientHello).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.dtls.handle_timeout(now).is_err() {
            self.failed = true;
        }
    }

    /// Datagrams to send to the server, in order.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 2048];
        loop {
            match self.dtls.poll_output(&mut buf) {
                Output::Packet(p) => out.push(p.to_vec()),
                Output::Timeout(t) => {
                    self.timeout = Some(t);
                    break;
                }
                Output::PeerCert(der) => self.peer_fingerprint = Some(Fingerprint::of_der(der)),
                Output::KeyingMaterial(km, profile) => {
                    // The client protects with the client key: swap the server's view.
                    self.keys = keys_from_material(&km, profile).map(|k| LegSrtpKeys {
                        inbound: k.outbound,
                        outbound: k.inbound,
                    });
                }
                Output::Connected => self.connected = true,
                Output::BufferTooSmall { needed } => buf.resize(needed, 0),
                _ => {}
            }
        }
        out
    }

    /// Whether the handshake completed.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether the association failed.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// The next retransmission time.
    pub fn timeout(&self) -> Option<Instant> {
        self.timeout
    }

    /// The fingerprint of the server's certificate, once seen.
    pub fn peer_fingerprint(&self) -> Option<Fingerprint> {
        self.peer_fingerprint
    }

    /// The client's SRTP keys once connected: `outbound` protects what it sends,
    /// `inbound` opens what the relay sends.
    pub fn keys(&self) -> Option<&LegSrtpKeys> {
        self.keys.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_and_print() {
        let f = Fingerprint([0xab; 32]);
        let s = f.to_sdp();
        assert_eq!(s.len(), 95);
        assert_eq!(Fingerprint::parse("SHA-256", &s.to_lowercase()), Ok(f));
        assert!(matches!(
            Fingerprint::parse("sha-1", &s),
            Err(FingerprintError::Algorithm(_))
        ));
        assert_eq!(
            Fingerprint::parse("sha-256", "AB:CD"),
            Err(FingerprintError::Malformed)
        );
        assert_eq!(
            Fingerprint::parse("sha-256", &format!("{s}:00")),
            Err(FingerprintError::Malformed)
        );
    }

    fn pump(now: Instant, server: &mut DtlsServer, client: &mut DtlsClient) -> Option<LegSrtpKeys> {
        let mut keys = None;
        let mut buf = vec![0u8; 1500];
        for _ in 0..20 {
            let mut moved = false;
            for d in client.drain() {
                server.handle_datagram(now, &d);
                moved = true;
            }
            loop {
                match server.poll(&mut buf) {
                    DtlsPoll::Send(p) => {
                        client.handle_datagram(now, p);
                        moved = true;
                    }
                    DtlsPoll::Keys(k) => keys = Some(k),
                    DtlsPoll::Idle => break,
                }
            }
            if !moved {
                break;
            }
        }
        keys
    }

    #[test]
    fn handshake_exports_matching_keys_and_checks_the_fingerprint() {
        let now = Instant::now();
        let relay = DtlsIdentity::generate().unwrap();
        let browser = DtlsIdentity::generate().unwrap();
        let mut server = DtlsServer::new(&relay, browser.fingerprint(), now);
        let mut client = DtlsClient::new(&browser, now);
        client.handle_timeout(now);
        let keys = pump(now, &mut server, &mut client).expect("keys");
        assert_eq!(server.phase(), DtlsPhase::Connected);
        assert!(client.is_connected());
        assert_eq!(client.peer_fingerprint(), Some(relay.fingerprint()));
        let ck = client.keys().unwrap();
        assert_eq!(ck.outbound, keys.inbound);
        assert_eq!(ck.inbound, keys.outbound);

        // A client whose certificate is not the offer's.
        let stranger = DtlsIdentity::generate().unwrap();
        let mut server = DtlsServer::new(&relay, browser.fingerprint(), now);
        let mut client = DtlsClient::new(&stranger, now);
        client.handle_timeout(now);
        assert!(pump(now, &mut server, &mut client).is_none());
        assert_eq!(
            server.phase(),
            DtlsPhase::Failed(DtlsFailure::FingerprintMismatch)
        );
    }
}
