//! The Raft node of a controller: raft-rs driven by one task on shard 0.
//!
//! One driver task owns the [`RawNode`]: it ticks every [`QuorumConfig::tick`], steps the messages peers
//! sent, proposes what the active controller queued, and handles each `Ready` in raft-rs' order: leader
//! messages out, snapshot installed, committed entries applied, new entries and hard state made durable,
//! then the messages that needed them (votes, acknowledgements), then `advance`. Nothing else touches the
//! `RawNode`, and no `RefCell` borrow of it lives across an `.await`.
//!
//! Committed entries are applied to the [`ClusterImage`] in index order; the image's version is the last
//! applied index and only grows. Proposals wait until their entry is applied here, so a caller that gets
//! `Ok(index)` sees its change in [`QuorumNode::image`].
//!
//! **A voter that lost its log does not vote.** A voter that starts with an empty data directory while a
//! quorum already exists (see `bootstrap`) runs in *catch-up* mode: it neither campaigns nor answers vote
//! requests until it has applied the commit index the leader reported in its first append. Raft's safety
//! rests on voters keeping what they acknowledged; once it holds every committed entry again, its vote is
//! safe.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::{self, Either};
use protobuf::Message as _;
use raft::eraftpb::{Entry, EntryType, Message, MessageType, Snapshot};
use raft::{Config, RawNode, StateRole};
use sluice_engine::watch::OffsetWatch;

use super::store::{node_id, raft_id, DiskLog, MemoryLog, StoreError, StoredSnapshot};
use crate::controller::commands::{AdminError, AdminErrorKind};
use crate::metadata::{ClusterImage, MetadataRecord, NodeId, SharedImage};
use crate::transport::{MetadataChunk, PeerTransport, QuorumDescription, ReplicaProgress};

#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub node_id: NodeId,
    /// The voters' node ids.
    pub voters: Vec<NodeId>,
    pub tick: Duration,
    /// Ticks without a leader before a follower campaigns (randomised up to twice this).
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Applied entries between snapshots.
    pub snapshot_every_entries: u64,
    /// Entries kept behind a snapshot for followers that lag a little.
    pub snapshot_keep_entries: u64,
    /// Start in catch-up mode (an empty voter joining an existing quorum).
    pub catch_up_first: bool,
}

/// How long a proposal may wait for its commit before the caller is told the quorum is unavailable.
const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Told the index of a proposal's entry once it is applied, or why it failed.
type ProposalWaiter = oneshot::Sender<Result<u64, AdminError>>;

struct Proposal {
    data: Vec<u8>,
    done: ProposalWaiter,
}

/// What the driver knows about the quorum, readable by anyone on the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumState {
    pub role: StateRole,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub committed: u64,
    /// The active controller may serve commands: it leads and has applied its own term's first entry.
    pub leader_ready: bool,
}

pub struct QuorumNode {
    config: QuorumConfig,
    raw: RefCell<RawNode<MemoryLog>>,
    disk: DiskLog,
    transport: Rc<dyn PeerTransport>,
    inbox: RefCell<VecDeque<Message>>,
    proposals: RefCell<VecDeque<Proposal>>,
    /// index → (term, waiter) of entries this leader proposed.
    pending: RefCell<BTreeMap<u64, (u64, ProposalWaiter)>>,
    wake: OffsetWatch,
    image: RefCell<SharedImage>,
    /// The applied index: images are published in this order.
    applied: OffsetWatch,
    state: Cell<QuorumState>,
    /// Index of this leader's first entry in its term; commands wait until it is applied.
    leader_start_index: Cell<u64>,
    voting: Cell<bool>,
    catch_up_target: Cell<u64>,
    /// When each peer was last heard from (for DescribeQuorum).
    last_heard: RefCell<BTreeMap<NodeId, i64>>,
    stopped: Cell<bool>,
    /// Why the metadata log failed (the driver then stops); `failed` reaches 1 at that moment.
    failure: RefCell<Option<String>>,
    failed: sluice_engine::watch::OffsetWatch,
}

fn logger() -> slog::Logger {
    slog::Logger::root(super::log_bridge::ToTracing, slog::o!())
}

impl QuorumNode {
    /// Loads the log and starts the driver task on the current shard.
    pub async fn start(
        config: QuorumConfig,
        disk: DiskLog,
        transport: Rc<dyn PeerTransport>,
    ) -> Result<Rc<QuorumNode>, StoreError> {
        let (mut memory, snapshot) = disk.load().await?;
        let voters: Vec<u64> = config.voters.iter().map(|v| raft_id(*v)).collect();
        if memory.snapshot.is_none() {
            memory.conf_state.voters.clone_from(&voters);
        } else if memory.conf_state.voters != voters {
            return Err(StoreError::Corrupt {
                path: disk.dir().to_path_buf(),
                reason: format!(
                    "controller.quorum.voters names raft ids {voters:?}, but this node's log was formed by {:?}; \
                     the voter set cannot change by editing the configuration",
                    memory.conf_state.voters
                ),
            });
        }
        let mut image = snapshot.map(|s| s.image).unwrap_or_default();
        image.version = memory.snapshot_index as i64;
        let applied = memory.snapshot_index;
        let raft_config = Config {
            id: raft_id(config.node_id),
            election_tick: config.election_ticks,
            heartbeat_tick: config.heartbeat_ticks,
            applied,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            batch_append: true,
            max_uncommitted_size: 64 << 20,
            max_committed_size_per_ready: 16 << 20,
            ..Config::default()
        };
        let mut raw = RawNode::new(&raft_config, memory, &logger()).map_err(|error| StoreError::Corrupt {
            path: disk.dir().to_path_buf(),
            reason: format!("raft refused the stored state: {error}"),
        })?;
        let single = config.voters == [config.node_id];
        if single {
            // A quorum of one elects itself at once.
            let _ = raw.campaign();
        }
        let node = Rc::new(QuorumNode {
            voting: Cell::new(!config.catch_up_first),
            config,
            raw: RefCell::new(raw),
            disk,
            transport,
            inbox: RefCell::new(VecDeque::new()),
            proposals: RefCell::new(VecDeque::new()),
            pending: RefCell::new(BTreeMap::new()),
            wake: OffsetWatch::new(0),
            image: RefCell::new(Arc::new(image)),
            applied: OffsetWatch::new(applied as i64),
            state: Cell::new(QuorumState {
                role: StateRole::Follower,
                leader: None,
                term: 0,
                committed: applied,
                leader_ready: false,
            }),
            leader_start_index: Cell::new(u64::MAX),
            catch_up_target: Cell::new(0),
            last_heard: RefCell::new(BTreeMap::new()),
            stopped: Cell::new(false),
            failure: RefCell::new(None),
            failed: sluice_engine::watch::OffsetWatch::new(0),
        });
        let driver = node.clone();
        glommio::spawn_local(async move { driver.drive().await }).detach();
        Ok(node)
    }

    pub fn config(&self) -> &QuorumConfig {
        &self.config
    }

    pub fn state(&self) -> QuorumState {
        self.state.get()
    }

    pub fn is_voting(&self) -> bool {
        self.voting.get()
    }

    /// The image as of the last applied entry.
    pub fn image(&self) -> SharedImage {
        self.image.borrow().clone()
    }

    /// The last applied index; grows with every applied entry.
    pub fn applied_watch(&self) -> &OffsetWatch {
        &self.applied
    }

    pub fn stop(&self) {
        self.stopped.set(true);
        self.wake.advance(self.wake.get() + 1);
    }

    /// A Raft message from a peer.
    pub fn receive(&self, from: NodeId, bytes: &[u8]) {
        match Message::parse_from_bytes(bytes) {
            Ok(message) if message.to == raft_id(self.config.node_id) => {
                self.last_heard.borrow_mut().insert(from, sluice_engine::types::now_ms());
                self.inbox.borrow_mut().push_back(message);
                self.wake.advance(self.wake.get() + 1);
            }
            Ok(message) => {
                tracing::warn!(from, to = node_id(message.to), "raft message for another node dropped")
            }
            Err(error) => tracing::warn!(from, %error, "unparseable raft message dropped"),
        }
    }

    /// Proposes `records` as one entry and waits until it is committed and applied here. Only the active
    /// controller may propose.
    pub async fn propose(&self, records: &[MetadataRecord]) -> Result<u64, AdminError> {
        if !self.state.get().leader_ready {
            return Err(self.not_controller());
        }
        let (done, wait) = oneshot::channel();
        self.proposals.borrow_mut().push_back(Proposal { data: MetadataRecord::encode_batch(records), done });
        self.wake.advance(self.wake.get() + 1);
        let timer = glommio::timer::sleep(PROPOSAL_TIMEOUT);
        futures::pin_mut!(timer);
        match future::select(wait, timer).await {
            Either::Left((Ok(result), _)) => result,
            Either::Left((Err(_), _)) => Err(self.not_controller()),
            Either::Right(_) => Err(AdminError::new(
                AdminErrorKind::Unavailable,
                format!("the metadata change was not committed within {} s", PROPOSAL_TIMEOUT.as_secs()),
            )),
        }
    }

    pub fn not_controller(&self) -> AdminError {
        let leader = self.state.get().leader;
        AdminError::new(
            AdminErrorKind::NotController,
            match leader {
                Some(leader) if leader != self.config.node_id => format!("the active controller is node {leader}"),
                Some(_) => "this controller is still catching up with its own term".to_string(),
                None => "no active controller: the quorum is electing one".to_string(),
            },
        )
    }

    /// Committed metadata from `from_index` on, for a broker that is not a voter: entries, or the snapshot
    /// when they were compacted.
    pub fn committed_since(&self, from_index: u64, max_entries: usize) -> MetadataChunk {
        let raw = self.raw.borrow();
        let store = raw.store();
        let applied = self.applied.get() as u64;
        if from_index <= store.snapshot_index {
            let image = self.image();
            // The live image is at least as new as the snapshot and consistent at `applied`.
            return MetadataChunk::Snapshot { index: applied, image: Box::new((*image).clone()) };
        }
        let mut entries = Vec::new();
        let mut index = from_index;
        while index <= applied && entries.len() < max_entries {
            let Some(entry) = store.entries.get((index - store.first_index()) as usize) else { break };
            let records = if entry.data.is_empty() {
                Vec::new()
            } else {
                MetadataRecord::decode_batch(&entry.data).unwrap_or_default()
            };
            entries.push((index, records));
            index += 1;
        }
        MetadataChunk::Entries { entries }
    }

    /// The quorum's progress as the leader tracks it.
    pub fn describe(&self) -> Result<QuorumDescription, AdminError> {
        let state = self.state.get();
        if state.role != StateRole::Leader {
            return Err(self.not_controller());
        }
        let raw = self.raw.borrow();
        let now = sluice_engine::types::now_ms();
        let last_index = raw.raft.raft_log.last_index();
        let heard = self.last_heard.borrow();
        let voters = self
            .config
            .voters
            .iter()
            .map(|voter| {
                let own = *voter == self.config.node_id;
                let matched = raw.raft.prs().get(raft_id(*voter)).map(|p| p.matched);
                let last_fetch = if own { now } else { heard.get(voter).copied().unwrap_or(-1) };
                let caught_up = matched.is_some_and(|m| m >= state.committed);
                ReplicaProgress {
                    node_id: *voter,
                    log_end_offset: if own { last_index as i64 + 1 } else { matched.map_or(-1, |m| m as i64 + 1) },
                    last_fetch_timestamp: last_fetch,
                    last_caught_up_timestamp: if caught_up { last_fetch } else { -1 },
                }
            })
            .collect();
        Ok(QuorumDescription {
            leader_id: self.config.node_id,
            leader_epoch: state.term as i64,
            high_watermark: state.committed as i64 + 1,
            voters,
            observers: Vec::new(),
        })
    }

    // ----- the driver -------------------------------------------------------------------------------------

    async fn drive(self: Rc<Self>) {
        let mut seen = 0i64;
        let mut next_tick = Instant::now() + self.config.tick;
        loop {
            if self.stopped.get() {
                return;
            }
            {
                let wake = self.wake.wait_for(seen + 1);
                let timer = glommio::timer::sleep(next_tick.saturating_duration_since(Instant::now()));
                futures::pin_mut!(wake);
                futures::pin_mut!(timer);
                let _ = future::select(wake, timer).await;
            }
            seen = self.wake.get();
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + self.config.tick;
                // A voter catching up must not campaign.
                if self.voting.get() || self.state.get().role == StateRole::Leader {
                    self.raw.borrow_mut().tick();
                }
            }
            self.step_inbox();
            self.propose_queued();
            if let Err(error) = self.handle_ready().await {
                // The metadata log could not be written (a full or failing disk): this voter cannot go on
                // safely, since Raft needs what it acknowledged on disk. It stops; whoever started it stops the
                // process (Kafka halts a broker whose metadata log directory fails).
                tracing::error!(%error, "the metadata log failed; this node stops taking part in the quorum");
                self.fail_pending(AdminError::new(AdminErrorKind::Storage, error.to_string()));
                *self.failure.borrow_mut() = Some(error.to_string());
                self.stopped.set(true);
                self.failed.advance(1);
                return;
            }
        }
    }

    /// Resolves, with the reason, once the metadata log failed and this voter stopped.
    pub async fn failed(&self) -> String {
        let _ = self.failed.wait_for(1).await;
        self.failure.borrow().clone().unwrap_or_default()
    }

    /// Whether a Raft message from `peer` arrived within `window` (a live voter answers the leader's
    /// heartbeats every few ticks).
    pub fn heard_within(&self, peer: NodeId, window: Duration) -> bool {
        let since = sluice_engine::types::now_ms() - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        self.last_heard.borrow().get(&peer).is_some_and(|at| *at >= since)
    }

    /// On the leader, at a clean shutdown: hands leadership to the most up-to-date other voter, so the quorum
    /// does not sit out an election timeout without a controller. Returns whether another node leads within
    /// `timeout` (true at once when this node does not lead).
    pub async fn resign(&self, timeout: Duration) -> bool {
        let target = {
            let raw = self.raw.borrow();
            if raw.raft.state != StateRole::Leader {
                return true;
            }
            self.config
                .voters
                .iter()
                .filter(|voter| **voter != self.config.node_id)
                .filter_map(|voter| raw.raft.prs().get(raft_id(*voter)).map(|p| (p.matched, *voter)))
                .max()
                .map(|(_, voter)| voter)
        };
        let Some(target) = target else { return false };
        tracing::info!(node = self.config.node_id, to = target, "handing the controller quorum's leadership over");
        self.raw.borrow_mut().transfer_leader(raft_id(target));
        self.wake.advance(self.wake.get() + 1);
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            let state = self.state.get();
            if state.role != StateRole::Leader && state.leader.is_some_and(|l| l != self.config.node_id) {
                return true;
            }
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// On the leader: forgets what a peer had acknowledged, because it came back with an empty log (a voter
    /// whose directory was lost). Replication to it starts over from its first entry (or a snapshot).
    /// Nothing committed changes: commitment only ever counts acknowledgements still to come.
    pub fn forget_progress(&self, peer: NodeId) {
        let mut raw = self.raw.borrow_mut();
        if raw.raft.state != StateRole::Leader {
            return;
        }
        if let Some(progress) = raw.raft.mut_prs().get_mut(raft_id(peer)) {
            if progress.matched > 0 {
                tracing::warn!(
                    peer,
                    matched = progress.matched,
                    "a voter came back with an empty log: replicating to it from the start"
                );
                progress.matched = 0;
                progress.become_probe();
            }
        }
    }

    fn step_inbox(&self) {
        let messages: Vec<Message> = self.inbox.borrow_mut().drain(..).collect();
        for mut message in messages {
            let kind = message.get_msg_type();
            if kind == MessageType::MsgHeartbeat {
                // A leader that still counts entries this voter lost (an empty directory) names a commit index
                // past its log: raft-rs would stop the process on it. The index is only advisory here; the
                // entries come with the next appends.
                let last = self.raw.borrow().raft.raft_log.last_index();
                if message.commit > last {
                    if self.voting.get() {
                        tracing::warn!(
                            commit = message.commit,
                            last_index = last,
                            "heartbeat names a commit index past this log"
                        );
                    }
                    message.commit = last;
                }
            }
            if !self.voting.get() {
                if matches!(kind, MessageType::MsgRequestVote | MessageType::MsgRequestPreVote) {
                    continue;
                }
                if kind == MessageType::MsgAppend && message.commit > self.catch_up_target.get() {
                    self.catch_up_target.set(message.commit);
                }
            }
            if let Err(error) = self.raw.borrow_mut().step(message) {
                tracing::debug!(%error, "raft message not stepped");
            }
        }
    }

    fn propose_queued(&self) {
        let queued: Vec<Proposal> = self.proposals.borrow_mut().drain(..).collect();
        for proposal in queued {
            let mut raw = self.raw.borrow_mut();
            if raw.raft.state != StateRole::Leader {
                drop(raw);
                let _ = proposal.done.send(Err(self.not_controller()));
                continue;
            }
            let index = raw.raft.raft_log.last_index() + 1;
            let term = raw.raft.term;
            match raw.propose(Vec::new(), proposal.data) {
                Ok(()) => {
                    self.pending.borrow_mut().insert(index, (term, proposal.done));
                }
                Err(error) => {
                    drop(raw);
                    let _ = proposal.done.send(Err(AdminError::new(
                        AdminErrorKind::NotController,
                        format!("the proposal was dropped: {error}"),
                    )));
                }
            }
        }
    }

    fn send(&self, messages: Vec<Message>) {
        for message in messages {
            let to = node_id(message.to);
            let is_snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
            match message.write_to_bytes() {
                Ok(bytes) => self.transport.send_raft(to, bytes),
                Err(error) => tracing::error!(%error, "a raft message did not encode"),
            }
            if is_snapshot {
                // Sent or queued: the follower's next answer resumes replication either way.
                self.raw.borrow_mut().report_snapshot(message.to, raft::SnapshotStatus::Finish);
            }
        }
    }

    async fn handle_ready(&self) -> Result<(), StoreError> {
        let mut ready = {
            let mut raw = self.raw.borrow_mut();
            if !raw.has_ready() {
                return Ok(());
            }
            raw.ready()
        };
        if let Some(soft) = ready.ss() {
            self.on_role(soft.raft_state, soft.leader_id);
        }
        self.send(ready.take_messages());
        // The hard state goes to disk before the entries or snapshot it came with: a log with entries but no
        // hard state then always means a lost file (refused at start), never a crash between the writes. Its
        // commit index may run ahead of the entries for that moment; loading clamps it to the log.
        if let Some(hard_state) = ready.hs().cloned() {
            if ready.must_sync() {
                self.disk.save_hard_state(&hard_state).await?;
            }
        }
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot().clone()).await?;
        }
        self.apply(ready.take_committed_entries());
        let entries = ready.entries().to_vec();
        if !entries.is_empty() {
            self.disk.append(&entries).await?;
            self.raw.borrow_mut().mut_store().append(&entries);
        }
        if let Some(hard_state) = ready.hs().cloned() {
            self.raw.borrow_mut().mut_store().hard_state = hard_state;
        }
        self.send(ready.take_persisted_messages());
        let mut light = self.raw.borrow_mut().advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.borrow_mut().mut_store().hard_state.commit = commit;
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries());
        self.raw.borrow_mut().advance_apply();
        self.update_state();
        self.maybe_snapshot().await
    }

    fn on_role(&self, role: StateRole, leader: u64) {
        let leader = (leader != raft::INVALID_ID).then(|| node_id(leader));
        let was = self.state.get();
        if role == StateRole::Leader && was.role != StateRole::Leader {
            // The leader's no-op for its term is the last entry now; commands wait until it is applied.
            self.leader_start_index.set(self.raw.borrow().raft.raft_log.last_index());
            tracing::info!(
                node = self.config.node_id,
                term = self.raw.borrow().raft.term,
                "became the active controller"
            );
        } else if role != StateRole::Leader && was.role == StateRole::Leader {
            self.leader_start_index.set(u64::MAX);
            tracing::info!(node = self.config.node_id, ?leader, "no longer the active controller");
        }
        if leader != was.leader {
            tracing::info!(node = self.config.node_id, ?leader, "controller quorum leader changed");
        }
    }

    fn update_state(&self) {
        let raw = self.raw.borrow();
        let applied = self.applied.get() as u64;
        let role = raw.raft.state;
        let leader = (raw.raft.leader_id != raft::INVALID_ID).then(|| node_id(raw.raft.leader_id));
        let committed = raw.raft.raft_log.committed;
        let leader_ready = role == StateRole::Leader && applied >= self.leader_start_index.get();
        self.state.set(QuorumState { role, leader, term: raw.raft.term, committed, leader_ready });
        drop(raw);
        self.disk.set_committed(committed);
        if !self.voting.get() && self.catch_up_target.get() > 0 && applied >= self.catch_up_target.get() {
            self.voting.set(true);
            tracing::info!(
                node = self.config.node_id,
                applied,
                "caught up with the quorum's committed log: this voter takes part in elections again"
            );
        }
    }

    async fn install_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let stored = StoredSnapshot::decode(&snapshot.data)
            .map_err(|reason| StoreError::Corrupt { path: self.disk.dir().to_path_buf(), reason })?;
        self.disk.install_snapshot(&stored).await?;
        self.raw.borrow_mut().mut_store().install(&snapshot);
        let mut image = stored.image;
        image.version = stored.index as i64;
        *self.image.borrow_mut() = Arc::new(image);
        self.applied.advance(stored.index as i64);
        tracing::info!(index = stored.index, "installed a metadata snapshot from the leader");
        Ok(())
    }

    /// Applies committed entries in order and settles the proposals they answer.
    fn apply(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut image = (**self.image.borrow()).clone();
        for entry in &entries {
            if entry.index as i64 <= image.version {
                continue;
            }
            let records = match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => Vec::new(),
                EntryType::EntryNormal => match MetadataRecord::decode_batch(&entry.data) {
                    Ok(records) => records,
                    Err(error) => {
                        // Every node would fail the same way on a committed entry: stop rather than diverge.
                        panic!("committed metadata entry {} is unreadable: {error}", entry.index);
                    }
                },
                other => {
                    tracing::error!(index = entry.index, ?other, "unexpected configuration change entry skipped");
                    Vec::new()
                }
            };
            image.apply_entry(entry.index as i64, &records);
            let mut pending = self.pending.borrow_mut();
            if let Some((term, done)) = pending.remove(&entry.index) {
                let result = if term == entry.term {
                    Ok(entry.index)
                } else {
                    Err(AdminError::new(AdminErrorKind::NotController, "leadership changed before the commit"))
                };
                let _ = done.send(result);
            }
            // Terms never decrease along the log: an older term's proposal can no longer commit.
            let stale: Vec<u64> = pending.iter().filter(|(_, (t, _))| *t < entry.term).map(|(i, _)| *i).collect();
            for index in stale {
                if let Some((_, done)) = pending.remove(&index) {
                    let _ = done.send(Err(AdminError::new(AdminErrorKind::NotController, "leadership changed")));
                }
            }
        }
        let version = image.version;
        *self.image.borrow_mut() = Arc::new(image);
        self.applied.advance(version);
    }

    async fn maybe_snapshot(&self) -> Result<(), StoreError> {
        let applied = self.applied.get() as u64;
        let (snapshot_index, term, voters) = {
            let raw = self.raw.borrow();
            let store = raw.store();
            let term = raft::Storage::term(store, applied).unwrap_or(0);
            (store.snapshot_index, term, store.conf_state.voters.clone())
        };
        let since = applied.saturating_sub(snapshot_index);
        let snapshot_taken = {
            let raw = self.raw.borrow();
            raw.store().snapshot.as_ref().map_or(0, |s| s.get_metadata().index)
        };
        if since < self.config.snapshot_every_entries || applied <= snapshot_taken || term == 0 {
            return Ok(());
        }
        let stored = StoredSnapshot { index: applied, term, voters, image: (*self.image()).clone() };
        let keep_from = applied.saturating_sub(self.config.snapshot_keep_entries);
        self.disk.save_snapshot(&stored, self.config.snapshot_keep_entries).await?;
        let mut raw = self.raw.borrow_mut();
        let store = raw.mut_store();
        let keep_term = raft::Storage::term(store, keep_from).unwrap_or(term);
        store.snapshot = Some(stored.to_raft());
        if keep_from > store.snapshot_index {
            store.compact(keep_from, keep_term);
        }
        tracing::debug!(index = applied, "metadata snapshot taken");
        Ok(())
    }

    fn fail_pending(&self, error: AdminError) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for (_, (_, done)) in pending {
            let _ = done.send(Err(error.clone()));
        }
        for proposal in self.proposals.borrow_mut().drain(..) {
            let _ = proposal.done.send(Err(error.clone()));
        }
    }
}

/// A fresh image applied from committed entries fetched by a broker that is not a voter.
pub fn apply_chunk(image: &ClusterImage, chunk: MetadataChunk) -> ClusterImage {
    match chunk {
        MetadataChunk::Snapshot { index, image: snapshot } => {
            let mut next = *snapshot;
            next.version = index as i64;
            next
        }
        MetadataChunk::Entries { entries } => {
            let mut next = image.clone();
            for (index, records) in entries {
                if index as i64 > next.version {
                    next.apply_entry(index as i64, &records);
                }
            }
            next
        }
    }
}
