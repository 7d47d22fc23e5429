//! Trunk transports in the host's relay: [`RelayOp::AddTrunk`](supernode_proto::relay_ops::RelayOp::AddTrunk)
//! and [`RelayOp::RekeyTrunk`](supernode_proto::relay_ops::RelayOp::RekeyTrunk).
//!
//! The first end (no `peer`) gets two fresh random SRTP master keys, one per direction (a
//! trunk never reuses a key for both ways, unlike a client transport), and latches onto the
//! far relay's first authenticated packet; its grant carries its address and keys for the
//! control plane to send to the other node. The second end is aimed at the first end's
//! address with the keys it was sent. See `supernode_relay::core::trunk`.
//!
//! A re-key (the anchor's end when its call resumes on another node) gives an end two fresh
//! random keys the same way and installs them on its leg (fresh SRTP contexts both ways;
//! the retransmission cache, protected under the old keys, is forgotten).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use base64::Engine;
use supernode_proto::protocol::SrtpKeying;
use supernode_proto::relay_ops::{
    AddTrunk, RekeyTrunk, RelayOpError, TrunkGrant, TrunkKeys, TrunkRekey,
};
use supernode_relay::LegRequest;
use supernode_relay::core::{LegSrtpKeys, SrtpKey};

use super::{CALL_CLOCK_RATES, HostRelay, fresh_keys, lock, op_err, relay_profile};

/// The relay's key for a wire keying (profile and base64 key ‖ salt of the right length).
pub(super) fn key_of(k: &SrtpKeying) -> Result<SrtpKey, RelayOpError> {
    let profile = relay_profile(k.profile)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&k.key_b64)
        .map_err(|_| RelayOpError::BadRequest("trunk key is not base64".into()))?;
    if bytes.len() != k.profile.key_and_salt_len() {
        return Err(RelayOpError::BadRequest(
            "trunk key has the wrong length".into(),
        ));
    }
    let (key, salt) = bytes.split_at(k.profile.key_len());
    Ok(SrtpKey {
        profile,
        master_key: key.to_vec(),
        master_salt: salt.to_vec(),
    })
}

impl HostRelay {
    /// Adds one end of a trunk (see the module docs).
    pub(super) fn add_trunk(&self, t: AddTrunk) -> Result<TrunkGrant, RelayOpError> {
        let session = lock(&self.calls)
            .get(&t.session)
            .and_then(|c| c.session)
            .ok_or(RelayOpError::UnknownSession)?;
        let (peer, keys) = match t.peer {
            Some(p) => {
                let addr: SocketAddr = p
                    .address
                    .parse()
                    .map_err(|_| RelayOpError::BadRequest("bad trunk address".into()))?;
                (Some(addr), p.keys)
            }
            None => {
                let (inbound, _) = fresh_keys(t.srtp)?;
                let (outbound, _) = fresh_keys(t.srtp)?;
                (None, TrunkKeys { inbound, outbound })
            }
        };
        let legkeys = LegSrtpKeys {
            inbound: key_of(&keys.inbound)?,
            outbound: key_of(&keys.outbound)?,
        };
        // A fresh SSRC salt per end: a resumed call's new end is keyed like the old one and must
        // never repeat its SSRC and packet indices (an SRTP IV).
        let req = LegRequest::trunk(peer, legkeys, CALL_CLOCK_RATES.to_vec(), rand::random());
        let leg = self.relay.add_leg(session, req).map_err(|e| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            op_err(e)
        })?;
        let mut calls = lock(&self.calls);
        let Some(cs) = calls.get_mut(&t.session) else {
            drop(calls);
            let _ = self.relay.release_leg(leg.id);
            return Err(RelayOpError::UnknownSession);
        };
        cs.transports.insert(t.transport.clone(), leg.id);
        Ok(TrunkGrant {
            transport: t.transport,
            address: leg.local.to_string(),
            keys,
        })
    }

    /// Gives an existing trunk end fresh keys (see the module docs).
    pub(super) fn rekey_trunk(&self, t: RekeyTrunk) -> Result<TrunkRekey, RelayOpError> {
        let leg = {
            let calls = lock(&self.calls);
            let cs = calls.get(&t.session).ok_or(RelayOpError::UnknownSession)?;
            cs.transports
                .get(&t.transport)
                .copied()
                .ok_or(RelayOpError::UnknownTransport)?
        };
        let (inbound, _) = fresh_keys(t.srtp)?;
        let (outbound, _) = fresh_keys(t.srtp)?;
        let keys = TrunkKeys { inbound, outbound };
        let legkeys = LegSrtpKeys {
            inbound: key_of(&keys.inbound)?,
            outbound: key_of(&keys.outbound)?,
        };
        self.relay.set_srtp(leg, Some(legkeys)).map_err(op_err)?;
        Ok(TrunkRekey {
            transport: t.transport,
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};

    use supernode_proto::SrtpProfile as WireProfile;
    use supernode_proto::ids::{CallId, OperationId, RelaySessionId, TransportId};
    use supernode_proto::relay_ops::{CreateSession, RelayOp, RelayOutcome};
    use supernode_relay::RelayConfig;
    use supernode_relay::core::DropReason;
    use supernode_relay::core::srtp::LegSrtp;

    use super::*;

    /// The far relay's SRTP for a trunk end keyed `keys` (it protects with the end's
    /// inbound key).
    fn far_end(keys: &TrunkKeys) -> LegSrtp {
        LegSrtp::new(&LegSrtpKeys {
            inbound: key_of(&keys.outbound).unwrap(),
            outbound: key_of(&keys.inbound).unwrap(),
        })
        .unwrap()
    }

    fn srtp_rtp(ctx: &mut LegSrtp, seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 111];
        p.extend(seq.to_be_bytes());
        p.extend((u32::from(seq) * 960).to_be_bytes());
        p.extend(0xF2E5_u32.to_be_bytes());
        p.extend([7u8; 40]);
        let len = p.len();
        p.resize(len + 64, 0);
        let n = ctx.protect_rtp(&mut p, len).unwrap();
        p.truncate(n);
        p
    }

    fn eventually(mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        f()
    }

    /// `RekeyTrunk` gives a trunk end two fresh keys (its grant's keys no longer work on
    /// the wire, the new ones do); an unknown transport is refused.
    #[test]
    fn a_rekeyed_trunk_end_takes_the_new_keys_and_refuses_the_old_ones() {
        let base = 33_000 + (std::process::id() % 50) as u16 * 40;
        let host = HostRelay::start(RelayConfig {
            workers: 1,
            port_range: (base, base + 39),
            shared_port: None,
            ..RelayConfig::default()
        })
        .unwrap();
        let (session, tr) = (RelaySessionId::random(), TransportId::random());
        let profile = WireProfile::Aes128CmHmacSha1_80;
        let results = host.execute(vec![
            RelayOp::CreateSession(CreateSession {
                op: OperationId::random(),
                session: session.clone(),
                call: CallId::random(),
            }),
            RelayOp::AddTrunk(AddTrunk {
                op: OperationId::random(),
                session: session.clone(),
                transport: tr.clone(),
                srtp: profile,
                peer: None,
            }),
        ]);
        let Ok(RelayOutcome::TrunkAdded(g)) = &results[1].outcome else {
            panic!("{results:?}");
        };
        let rekey = |t: &TransportId| {
            RelayOp::RekeyTrunk(RekeyTrunk {
                op: OperationId::random(),
                session: session.clone(),
                transport: t.clone(),
                srtp: profile,
            })
        };
        let r = host.execute(vec![rekey(&tr)]);
        let Ok(RelayOutcome::TrunkRekeyed(k)) = &r[0].outcome else {
            panic!("{r:?}");
        };
        assert_eq!(k.transport, tr);
        assert_ne!(k.keys.inbound, g.keys.inbound);
        assert_ne!(k.keys.outbound, g.keys.outbound);
        assert_ne!(k.keys.inbound, k.keys.outbound, "one key per direction");
        let r = host.execute(vec![rekey(&TransportId::random())]);
        assert_eq!(r[0].outcome, Err(RelayOpError::UnknownTransport));
        // On the wire: the grant's (old) keys are refused, the new ones are taken.
        let leg = lock(&host.calls)[&session].transports[&tr];
        let stats = || host.relay.leg_stats(leg).unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to: SocketAddr = g.address.parse().unwrap();
        let (mut old, mut new) = (far_end(&g.keys), far_end(&k.keys));
        sock.send_to(&srtp_rtp(&mut old, 1), to).unwrap();
        assert!(
            eventually(|| stats().counters.drops_for(DropReason::Stranger) >= 1),
            "an old-key packet does not latch the trunk"
        );
        assert_eq!(stats().peer, None);
        sock.send_to(&srtp_rtp(&mut new, 1), to).unwrap();
        assert!(eventually(|| stats().counters.rtp_in >= 1));
        assert_eq!(stats().peer, Some(sock.local_addr().unwrap()));
        sock.send_to(&srtp_rtp(&mut old, 2), to).unwrap();
        assert!(
            eventually(|| stats().counters.drops_for(DropReason::SrtpAuth) >= 1),
            "an old-key packet from the peer fails authentication"
        );
        assert_eq!(stats().counters.rtp_in, 1);
    }
}
