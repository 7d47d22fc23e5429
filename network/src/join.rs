//! Wiring a node's [`Network`] to its signaling hub: the hub sends cross-node messages and
//! claims through [`NetworkAccess`], and the node's subject feeds other nodes' messages
//! into [`Hub::handle_node_msg`].

use std::sync::{Arc, Weak};

use supernode_proto::ids::{CallId, EndpointId};
use supernode_proto::network::{NodeMsg, NodeReply, Refusal};
use supernode_signaling::calls::hub::Hub;
use supernode_signaling::network_access::{ClaimRx, NodeReplyRx};
use supernode_signaling::{NetFailure, NetworkAccess, Placement};
use tokio::sync::oneshot;

use crate::error::NetworkError;
use crate::node::{Claim, Network, NodeHandler};

fn failure(e: &NetworkError) -> NetFailure {
    match e {
        NetworkError::Unavailable(_) => NetFailure::Unavailable,
        _ => NetFailure::Unreachable,
    }
}

/// [`NetworkAccess`] over a [`Network`] (each operation runs in a task of its own).
#[derive(Debug, Clone)]
pub struct NetworkAccessor(pub Arc<Network>);

impl NetworkAccess for NetworkAccessor {
    fn available(&self) -> bool {
        self.0.reachable()
    }

    fn send(&self, node: &str, msg: NodeMsg) -> NodeReplyRx {
        let (tx, rx) = oneshot::channel();
        let net = self.0.clone();
        let node = node.to_owned();
        tokio::spawn(async move {
            let r = net.request(&node, msg).await.map_err(|e| failure(&e));
            let _ = tx.send(r);
        });
        rx
    }

    fn claim(&self, call: &CallId, endpoint: &EndpointId) -> ClaimRx {
        let (tx, rx) = oneshot::channel();
        let net = self.0.clone();
        let (call, endpoint) = (call.clone(), endpoint.clone());
        tokio::spawn(async move {
            let r = net
                .claim_answer(&call, &endpoint)
                .await
                .map(|c| c == Claim::Won)
                .map_err(|e| failure(&e));
            let _ = tx.send(r);
        });
        rx
    }
}

/// [`Placement`] over a [`Network`]: the least-loaded live node of this node's region that
/// takes endpoints (this node too, unless it drains or is full).
#[derive(Debug, Clone)]
pub struct NetworkPlacement(pub Arc<Network>);

impl Placement for NetworkPlacement {
    fn ws_url(&self) -> Option<String> {
        self.0
            .place(&self.0.config().region, false)
            .map(|b| b.ws_url)
            .filter(|u| !u.is_empty())
    }

    fn ws_urls(&self) -> Vec<String> {
        // A dead node's endpoints go to mega nodes first.
        self.0
            .ranked(&self.0.config().region, true)
            .into_iter()
            .map(|b| b.ws_url)
            .filter(|u| !u.is_empty())
            .collect()
    }
}

/// Feeds other nodes' messages into a hub.
#[derive(Debug, Clone)]
pub struct HubHandler(pub Weak<Hub>);

impl NodeHandler for HubHandler {
    fn handle(&self, from: &str, msg: NodeMsg) -> NodeReply {
        match self.0.upgrade() {
            Some(hub) => hub.handle_node_msg(from, msg),
            None => NodeReply::Refused {
                why: Refusal::UnknownCall,
            },
        }
    }
}

/// Makes `hub` part of the network `net`: its calls ring endpoints on other nodes and it
/// serves this node's subject. (Give `net.directory()` to signaling as its directory.)
pub async fn join(net: &Arc<Network>, hub: &Arc<Hub>) -> Result<(), NetworkError> {
    hub.attach_network(Arc::new(NetworkAccessor(net.clone())));
    net.serve(Arc::new(HubHandler(Arc::downgrade(hub)))).await
}
