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
fn key_of(k: &SrtpKeying) -> Result<SrtpKey, RelayOpError> {
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
