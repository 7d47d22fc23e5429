//! One node's membership of the network: the NATS connection, the buckets, the heartbeat,
//! the registry watch, the directory's tasks and the cross-node message server.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt;
use supernode_proto::ids::{CallId, EndpointId};
use supernode_proto::network::{Envelope, MessageId, NodeMsg, NodeReply};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{Credentials, NetworkConfig};
use crate::counters::{Counters, CountersSnapshot, bump};
use crate::dedupe::Dedupe;
use crate::directory::{self, NatsDirectory};
use crate::error::NetworkError;
use crate::membership::{Heartbeat, Load, Members};

/// What a node does with a message from another node (the hub implements it).
pub trait NodeHandler: Send + Sync {
    /// Handles one message from `from` (each message id once) and answers.
    fn handle(&self, from: &str, msg: NodeMsg) -> NodeReply;
}

/// Who won an answer claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This claim won: the caller answers this endpoint.
    Won,
    /// Another endpoint had claimed the call (`node`, `endpoint` as written by the winner).
    Lost {
        /// The winner, `node/endpoint`.
        winner: String,
    },
}

/// The state the host reports into its heartbeat.
#[derive(Clone, Debug, Default)]
struct Reported {
    load: Load,
    draining: bool,
    full: bool,
}

/// A node's membership of the network. Dropping it (or [`Network::leave`]) stops its tasks.
pub struct Network {
    cfg: NetworkConfig,
    client: async_nats::Client,
    registry: kv::Store,
    claims: kv::Store,
    members: Arc<RwLock<Members>>,
    reported: Arc<Mutex<Reported>>,
    directory: Arc<NatsDirectory>,
    counters: Arc<Counters>,
    dedupe: Arc<Mutex<Dedupe>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Since when the NATS connection is lost (`None`: up).
    down_since: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("node", &self.cfg.node_id)
            .field("region", &self.cfg.region)
            .finish_non_exhaustive()
    }
}

fn bucket_name(prefix: &str, what: &str) -> String {
    format!("{prefix}_{what}")
}

async fn bucket(
    js: &jetstream::Context,
    name: String,
    replicas: usize,
    max_age: Duration,
) -> Result<kv::Store, NetworkError> {
    if let Ok(store) = js.get_key_value(&name).await {
        return Ok(store);
    }
    // The stream a KV bucket is, made directly: the client's `create_key_value` first reads
    // the account info, whose 2.9 form (no `reserved_*` fields) this client cannot parse.
    let created = js
        .create_stream(jetstream::stream::Config {
            name: format!("KV_{name}"),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: jetstream::stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await;
    if let Err(e) = &created {
        tracing::debug!(bucket = %name, error = %e, "creating the bucket");
    }
    // Made now, or by another node meanwhile.
    js.get_key_value(&name)
        .await
        .map_err(|e| NetworkError::Kv(format!("bucket {name}: {e}")))
}

impl Network {
    /// Connects, makes (or opens) the buckets, and starts the heartbeat, the registry and
    /// directory watches, the directory writer and the event watch (re-registration when
    /// NATS comes back). Fails if no server can be reached now.
    pub async fn connect(cfg: NetworkConfig) -> Result<Arc<Self>, NetworkError> {
        cfg.validate()?;
        let (events_tx, mut events_rx) = mpsc::unbounded_channel::<async_nats::Event>();
        let mut opts = match &cfg.credentials {
            Credentials::None => async_nats::ConnectOptions::new(),
            Credentials::UserPassword { user, password } => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            Credentials::Token(t) => async_nats::ConnectOptions::with_token(t.clone()),
        };
        opts = opts
            .name(format!("supernode {}", cfg.node_id))
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(cfg.request_timeout))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((100 * attempts as u64).min(1000))
            })
            .event_callback(move |event| {
                let tx = events_tx.clone();
                async move {
                    let _ = tx.send(event);
                }
            });
        let addrs: Vec<async_nats::ServerAddr> = cfg
            .urls
            .iter()
            .map(|u| {
                u.parse()
                    .map_err(|e| NetworkError::Config(format!("NATS URL {u:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let client = opts
            .connect(addrs.as_slice())
            .await
            .map_err(|e| NetworkError::Unavailable(format!("connecting to NATS: {e}")))?;
        let js = jetstream::new(client.clone());
        // Only garbage collection (liveness is the heartbeat's age); at least JetStream's
        // 2-minute duplicate window, which a bucket's max_age may not undercut.
        let hb_age = (cfg.dead_after * 10).max(Duration::from_secs(300));
        let registry = bucket(
            &js,
            bucket_name(&cfg.prefix, "nodes"),
            cfg.kv_replicas,
            hb_age,
        )
        .await?;
        let dir_kv = bucket(
            &js,
            bucket_name(&cfg.prefix, "dir"),
            cfg.kv_replicas,
            Duration::ZERO,
        )
        .await?;
        let claims = bucket(
            &js,
            bucket_name(&cfg.prefix, "calls"),
            cfg.kv_replicas,
            Duration::from_secs(3600),
        )
        .await?;

        let counters = Arc::new(Counters::default());
        let members = Arc::new(RwLock::new(
            Members::new(cfg.dead_after).hearing_self(cfg.node_id.clone(), cfg.heartbeat_interval),
        ));
        let (dir_tx, dir_rx) = mpsc::unbounded_channel();
        let directory = Arc::new(NatsDirectory::new(
            cfg.node_id.clone(),
            members.clone(),
            dir_tx,
        ));
        directory::purge_own(&dir_kv, &cfg.node_id, &counters).await;

        let net = Arc::new(Self {
            cfg,
            client,
            registry,
            claims,
            members,
            reported: Arc::new(Mutex::new(Reported::default())),
            directory,
            counters,
            dedupe: Arc::new(Mutex::new(Dedupe::new(Duration::from_secs(60), 100_000))),
            tasks: Mutex::new(Vec::new()),
            down_since: Mutex::new(None),
        });
        // The first heartbeat before anything else: peers see us at once.
        net.beat(0).await;
        let mut tasks = vec![
            tokio::spawn(directory::run_writer(
                dir_kv.clone(),
                dir_rx,
                net.counters.clone(),
            )),
            tokio::spawn(directory::run_watcher(dir_kv, net.directory.clone())),
        ];
        {
            let weak = Arc::downgrade(&net);
            tasks.push(tokio::spawn(async move {
                let mut seq = 1u64;
                loop {
                    let Some(net) = weak.upgrade() else { return };
                    let every = net.cfg.heartbeat_interval;
                    net.beat(seq).await;
                    drop(net);
                    seq += 1;
                    tokio::time::sleep(every).await;
                }
            }));
        }
        {
            let registry = net.registry.clone();
            let members = net.members.clone();
            // This node's own heartbeat comes through the watch every interval; a watch
            // silent for `dead_after` is stuck (its consumer lost with a NATS server) and is
            // made again, which replays every node's latest heartbeat.
            let stuck_after = net.cfg.dead_after;
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Ok(mut watch) = registry.watch_with_history(">").await {
                        while let Ok(Some(Ok(entry))) =
                            tokio::time::timeout(stuck_after, watch.next()).await
                        {
                            let mut m = members.write().unwrap_or_else(|e| e.into_inner());
                            match entry.operation {
                                kv::Operation::Put => {
                                    if let Ok(beat) =
                                        serde_json::from_slice::<Heartbeat>(&entry.value)
                                    {
                                        m.observe_put(beat, entry.revision, Instant::now());
                                    }
                                }
                                kv::Operation::Delete | kv::Operation::Purge => {
                                    m.remove(&entry.key);
                                }
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }));
        }
        {
            let weak = Arc::downgrade(&net);
            tasks.push(tokio::spawn(async move {
                let mut lost = false;
                while let Some(event) = events_rx.recv().await {
                    let Some(net) = weak.upgrade() else { return };
                    match event {
                        async_nats::Event::Disconnected => {
                            tracing::warn!(node = %net.cfg.node_id, "NATS connection lost");
                            lost = true;
                            net.down_since
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(Instant::now());
                            net.members
                                .write()
                                .unwrap_or_else(|e| e.into_inner())
                                .deaf(Instant::now());
                        }
                        async_nats::Event::Connected if lost => {
                            lost = false;
                            *net.down_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
                            net.members
                                .write()
                                .unwrap_or_else(|e| e.into_inner())
                                .hear_again(Instant::now());
                            tracing::info!(node = %net.cfg.node_id, "NATS back: re-registering");
                            net.beat(0).await;
                            net.directory.resync();
                        }
                        _ => {}
                    }
                }
            }));
        }
        net.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(tasks);
        Ok(net)
    }

    async fn beat(&self, seq: u64) {
        let reported = self
            .reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let beat = Heartbeat {
            node: self.cfg.node_id.clone(),
            region: self.cfg.region.clone(),
            role: self.cfg.role,
            ws_url: self.cfg.ws_url.clone(),
            load: reported.load,
            draining: reported.draining,
            full: reported.full,
            seq,
        };
        let Ok(value) = serde_json::to_vec(&beat) else {
            return;
        };
        // Our own view of ourselves does not wait for the watch.
        self.members
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .observe(beat, Instant::now());
        if self
            .registry
            .put(&self.cfg.node_id, Bytes::from(value))
            .await
            .is_ok()
        {
            bump(&self.counters.heartbeats);
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.cfg.node_id
    }

    /// This node's configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    /// Whether the NATS connection is up now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Whether cross-node work may start: connected, or the connection was lost less than
    /// `reconnect_grace` ago (the client is failing over to another server).
    pub fn reachable(&self) -> bool {
        self.connected()
            || self
                .down_since
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none_or(|t| t.elapsed() < self.cfg.reconnect_grace)
    }

    /// Waits (within the reconnect grace) until connected; whether it is.
    async fn wait_connected(&self) -> bool {
        while !self.connected() {
            if !self.reachable() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// The load the next heartbeats report.
    pub fn set_load(&self, load: Load) {
        self.reported.lock().unwrap_or_else(|e| e.into_inner()).load = load;
    }

    /// Takes the node out of placement (draining) or back in.
    pub fn set_draining(&self, draining: bool) {
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .draining = draining;
    }

    /// Marks the node full (out of placement for new endpoints) or not.
    pub fn set_full(&self, full: bool) {
        self.reported.lock().unwrap_or_else(|e| e.into_inner()).full = full;
    }

    /// The membership table as this node hears it.
    pub fn members(&self) -> Members {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Live nodes now.
    pub fn live_nodes(&self) -> Vec<Heartbeat> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .live(Instant::now())
            .into_iter()
            .cloned()
            .collect()
    }

    /// The node a new endpoint of `region` should use (least-loaded live node that takes
    /// endpoints; mega nodes first with `failover`).
    pub fn place(&self, region: &str, failover: bool) -> Option<Heartbeat> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .place(region, failover, Instant::now())
            .cloned()
    }

    /// Every live node of `region` that takes endpoints, in placement order (mega nodes
    /// first with `failover`).
    pub fn ranked(&self, region: &str, failover: bool) -> Vec<Heartbeat> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .ranked(region, failover, Instant::now())
            .into_iter()
            .cloned()
            .collect()
    }

    /// The shared directory (give it to signaling as its `Directory`).
    pub fn directory(&self) -> Arc<NatsDirectory> {
        self.directory.clone()
    }

    /// The NATS traffic counters.
    pub fn counters(&self) -> CountersSnapshot {
        self.counters.snapshot()
    }

    fn subject(&self, node: &str) -> String {
        format!("{}.node.{node}", self.cfg.prefix)
    }

    /// Sends `msg` to `node` and waits for its answer: up to `request_attempts` attempts of
    /// `request_timeout` each, all with one message id (the receiver acts once). Fails with
    /// [`NetworkError::Unavailable`] when NATS is not connected and does not come back within
    /// the reconnect grace, and fast with
    /// [`NetworkError::NoSuchNode`] when nobody listens on the node's subject.
    pub async fn request(&self, node: &str, msg: NodeMsg) -> Result<NodeReply, NetworkError> {
        let env = Envelope {
            id: MessageId::random(),
            from: self.cfg.node_id.clone(),
            msg,
        };
        let payload = Bytes::from(serde_json::to_vec(&env)?);
        let subject = self.subject(node);
        bump(&self.counters.requests);
        for attempt in 1..=self.cfg.request_attempts {
            if !self.wait_connected().await {
                bump(&self.counters.request_failures);
                return Err(NetworkError::Unavailable("not connected to NATS".into()));
            }
            if attempt > 1 {
                bump(&self.counters.retries);
            }
            let answer = tokio::time::timeout(
                self.cfg.request_timeout,
                self.client.request(subject.clone(), payload.clone()),
            )
            .await;
            match answer {
                Ok(Ok(m)) => return Ok(serde_json::from_slice(&m.payload)?),
                Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                    // A live node whose subscription has not reached our server yet (interest
                    // travels over the cluster's routes): try again shortly. A node that is
                    // not live is refused at once.
                    let live = self.live_nodes().iter().any(|b| b.node == node);
                    if !live || attempt == self.cfg.request_attempts {
                        bump(&self.counters.request_failures);
                        return Err(NetworkError::NoSuchNode(node.to_owned()));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Err(e)) => tracing::debug!(node, attempt, error = %e, "request failed"),
                Err(_) => tracing::debug!(node, attempt, "request timed out"),
            }
        }
        bump(&self.counters.request_failures);
        Err(NetworkError::TimedOut {
            node: node.to_owned(),
            attempts: self.cfg.request_attempts,
        })
    }

    /// Serves this node's subject: each message is decoded, handled once by `handler`
    /// (repeats get the first reply again) and answered. Undecodable messages are dropped
    /// and counted.
    pub async fn serve(
        self: &Arc<Self>,
        handler: Arc<dyn NodeHandler>,
    ) -> Result<(), NetworkError> {
        let mut sub = self
            .client
            .subscribe(self.subject(&self.cfg.node_id))
            .await
            .map_err(|e| NetworkError::Unavailable(format!("subscribing: {e}")))?;
        // The subscription is in place once the server has seen it.
        let _ = self.client.flush().await;
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let Some(net) = weak.upgrade() else { return };
                let env = match serde_json::from_slice::<Envelope>(&m.payload) {
                    Ok(env) => env,
                    Err(_) => {
                        bump(&net.counters.undecodable);
                        continue;
                    }
                };
                let now = Instant::now();
                let repeat = net
                    .dedupe
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .seen(&env.id, now);
                let reply = match repeat {
                    Some(r) => {
                        bump(&net.counters.repeats);
                        r
                    }
                    None => {
                        bump(&net.counters.handled);
                        let r = handler.handle(&env.from, env.msg);
                        net.dedupe.lock().unwrap_or_else(|e| e.into_inner()).record(
                            env.id,
                            r.clone(),
                            now,
                        );
                        r
                    }
                };
                if let (Some(to), Ok(body)) = (m.reply, serde_json::to_vec(&reply)) {
                    let _ = net.client.publish(to, Bytes::from(body)).await;
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
        Ok(())
    }

    /// Claims the answer of `call` for `endpoint` of this node: exactly one claim per call
    /// wins network-wide (a KV write that expects no earlier revision of the key).
    pub async fn claim_answer(
        &self,
        call: &CallId,
        endpoint: &EndpointId,
    ) -> Result<Claim, NetworkError> {
        if !self.wait_connected().await {
            return Err(NetworkError::Unavailable("not connected to NATS".into()));
        }
        bump(&self.counters.claims);
        let key = format!("answer.{}", call.as_str());
        let value = format!("{}/{}", self.cfg.node_id, endpoint.as_str());
        // A write can fail for a while with every server up: after a server died, the
        // bucket's stream elects a new leader (4–9 s, more on a loaded machine; meanwhile a
        // write finds "no stream"). Such failures are retried for `kv_retry_window`; a retry
        // after an attempt that was applied but not acknowledged finds its own claim below.
        let give_up = Instant::now() + self.cfg.kv_retry_window;
        let result = loop {
            match self
                .claims
                .update(&key, Bytes::from(value.clone()), 0)
                .await
            {
                Err(e)
                    if e.kind() != kv::UpdateErrorKind::WrongLastRevision
                        && Instant::now() < give_up =>
                {
                    tracing::debug!(error = %e, "claim failed: retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if !self.wait_connected().await {
                        return Err(NetworkError::Unavailable("not connected to NATS".into()));
                    }
                }
                r => break r,
            }
        };
        match result {
            Ok(_) => Ok(Claim::Won),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // The key exists (that is why the create failed), but a read may reach a
                // replica that has not applied it yet: read again, briefly, until it shows.
                let mut winner = String::new();
                for _ in 0..50 {
                    winner = self
                        .claims
                        .get(&key)
                        .await
                        .ok()
                        .flatten()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    if !winner.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if winner == value {
                    // Our own earlier attempt won (a retry after a lost ack).
                    Ok(Claim::Won)
                } else {
                    Ok(Claim::Lost { winner })
                }
            }
            Err(e) => Err(NetworkError::Kv(format!("claim: {e}"))),
        }
    }

    /// Leaves on purpose: deletes the registry entry (peers drop the node at once) and
    /// stops every task. The directory records stay until the node's next start purges
    /// them; peers ignore them meanwhile (the node is not live).
    pub async fn leave(&self) {
        let _ = self.registry.delete(&self.cfg.node_id).await;
        self.stop();
    }

    /// Stops every task without telling anyone (what a crash looks like to peers).
    pub fn stop(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.stop();
    }
}
