//! Classic-protocol rebalances on the coordinator, driven through its API on one glommio shard: the join phase
//! ends the moment its last member rejoins or leaves (as Kafka's delayed join completes on each JoinGroup),
//! not at the next poll of a timer nor at the rebalance timeout; a member that never rejoins is removed at the
//! timeout; and a member of the current generation may commit offsets while a rebalance is being prepared
//! (REBALANCE_IN_PROGRESS only between the JoinGroup answers and the leader's assignment), as Kafka allows.
//! A session ends at its deadline, which the housekeeping is told.
//!
//! The "at once" checks let the executor run a bounded number of turns (`yield_now`) and sleep on no timer, so
//! an answer that needed a timer to fire (a poll, a timeout) is not there yet; the time bounds beside them are
//! generous correctness bounds (seconds against a ten-minute rebalance timeout), not performance figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_engine::{FlushPolicy, LogConfig, LogManager, ManagerOptions, TopicPartition};
use sluice_net::error::ResponseError;
use sluice_net::groups::{Coordinator, GroupConfig, JoinOutcome, JoinRequest, OFFSETS_TOPIC};

const GROUP: &str = "g";
/// Far longer than any test waits: a join phase that ended at it would fail the test by its time bound.
const LONG_REBALANCE_TIMEOUT_MS: i32 = 600_000;

async fn coordinator(manager: &LogManager) -> Rc<Coordinator> {
    let coordinator = Coordinator::new(GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        min_session_timeout_ms: 1,
        max_session_timeout_ms: 1_000_000,
        max_size: 1000,
        offset_metadata_max_bytes: 4096,
        offsets_retention_ms: i64::MAX / 2,
    });
    coordinator.set_offsets_partitions(1);
    let log_config = LogConfig { retention_ms: -1, flush_policy: FlushPolicy::Always, ..LogConfig::default() };
    let log = manager.open_log(&TopicPartition::new(OFFSETS_TOPIC, 0), log_config).await.unwrap();
    log.set_high_watermark_follows_durable(true);
    coordinator.load_partition(0, log, sluice_engine::LeaderEpoch(0)).await.unwrap();
    coordinator
}

fn request(member_id: &str, rebalance_timeout_ms: i32) -> JoinRequest {
    JoinRequest {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 600_000,
        rebalance_timeout_ms,
        protocol_type: "consumer".into(),
        protocols: vec![("cooperative-sticky".into(), Bytes::from_static(b"subscription"))],
        require_known_member_id: false,
    }
}

/// A JoinGroup running as its own task, as a connection's request does; its answer once it has one.
struct PendingJoin(Rc<RefCell<Option<JoinOutcome>>>);

impl PendingJoin {
    fn start(coordinator: &Rc<Coordinator>, request: JoinRequest) -> Self {
        let slot = Rc::new(RefCell::new(None));
        let (coordinator, answer) = (coordinator.clone(), slot.clone());
        glommio::spawn_local(async move {
            let outcome = coordinator.join(request).await;
            *answer.borrow_mut() = Some(outcome);
        })
        .detach();
        PendingJoin(slot)
    }

    fn answer(&self) -> Option<JoinOutcome> {
        self.0.borrow().clone()
    }

    /// The answer within `turns` executor turns, with no timer allowed to fire in between.
    async fn answer_within_turns(&self, turns: usize) -> Option<JoinOutcome> {
        for _ in 0..turns {
            if let Some(outcome) = self.answer() {
                return Some(outcome);
            }
            glommio::executor().yield_now().await;
        }
        self.answer()
    }

    /// The answer, waiting on the clock up to `limit`.
    async fn answer_within(&self, limit: Duration) -> JoinOutcome {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(outcome) = self.answer() {
                return outcome;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        panic!("no JoinGroup answer within {limit:?}");
    }
}

/// A one-member group, Stable in generation 1, with `timeout_ms` as the member's rebalance timeout.
async fn stable_group_of_one(coordinator: &Rc<Coordinator>, timeout_ms: i32) -> String {
    let first = PendingJoin::start(coordinator, request("", timeout_ms));
    let joined = first.answer_within(Duration::from_secs(10)).await;
    assert_eq!((joined.error, joined.generation_id), (None, 1));
    let sync = coordinator.sync(GROUP, 1, &joined.member_id, None, None, vec![]).await;
    assert_eq!(sync.error, None);
    joined.member_id
}

fn run(body: impl FnOnce(Rc<LogManager>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + 'static) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
    ex.run(async move {
        let manager = LogManager::new(&path, ManagerOptions::default(), false);
        manager.spawn_background();
        body(manager.clone()).await;
        manager.shutdown().await.unwrap();
    });
}

#[test]
fn the_join_phase_ends_as_the_last_member_rejoins() {
    run(|manager| {
        Box::pin(async move {
            let coordinator = coordinator(&manager).await;
            let a = stable_group_of_one(&coordinator, LONG_REBALANCE_TIMEOUT_MS).await;
            // B joins: a rebalance starts and waits for A, who learns of it from its heartbeat.
            let b = PendingJoin::start(&coordinator, request("", LONG_REBALANCE_TIMEOUT_MS));
            assert!(b.answer_within_turns(50).await.is_none(), "the phase waits for A");
            assert_eq!(coordinator.heartbeat(GROUP, 1, &a), Some(ResponseError::RebalanceInProgress));
            // A still owns its partitions while the rebalance is prepared, and may commit them (Kafka does).
            let commit = |generation| vec![("t".to_string(), 0, 10 + i64::from(generation), -1, None)];
            assert_eq!(coordinator.commit(GROUP, 1, &a, commit(1)).await, vec![None]);
            // A rejoins: the phase ends at once, without a timer firing.
            let started = Instant::now();
            let a_rejoined = PendingJoin::start(&coordinator, request(&a, LONG_REBALANCE_TIMEOUT_MS));
            let a_answer = a_rejoined.answer_within_turns(200).await.expect("A's JoinGroup answered at once");
            let b_answer = b.answer_within_turns(200).await.expect("B's JoinGroup answered at once");
            assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
            assert_eq!((a_answer.error, a_answer.generation_id), (None, 2));
            assert_eq!((b_answer.error, b_answer.generation_id), (None, 2));
            assert_eq!(a_answer.leader, a);
            assert_eq!(a_answer.members.len(), 2, "the leader gets both members");
            // Between the JoinGroup answers and the leader's SyncGroup: REBALANCE_IN_PROGRESS, as Kafka.
            assert_eq!(
                coordinator.commit(GROUP, 2, &a, commit(2)).await,
                vec![Some(ResponseError::RebalanceInProgress)]
            );
            assert_eq!(coordinator.commit(GROUP, 1, &a, commit(1)).await, vec![Some(ResponseError::IllegalGeneration)]);
            let sync = coordinator.sync(GROUP, 2, &a, None, None, vec![]).await;
            assert_eq!(sync.error, None);
            assert_eq!(coordinator.commit(GROUP, 2, &b_answer.member_id, commit(2)).await, vec![None]);
        })
    });
}

#[test]
fn a_leave_ends_the_join_phase_of_those_who_rejoined() {
    run(|manager| {
        Box::pin(async move {
            let coordinator = coordinator(&manager).await;
            let a = stable_group_of_one(&coordinator, LONG_REBALANCE_TIMEOUT_MS).await;
            let b = PendingJoin::start(&coordinator, request("", LONG_REBALANCE_TIMEOUT_MS));
            assert!(b.answer_within_turns(50).await.is_none(), "the phase waits for A");
            // A leaves instead of rejoining (a consumer closing): B alone makes the next generation, at once.
            assert_eq!(coordinator.leave(GROUP, &a, None), None);
            let b_answer = b.answer_within_turns(200).await.expect("B's JoinGroup answered at once");
            assert_eq!((b_answer.error, b_answer.generation_id), (None, 2));
            assert_eq!(b_answer.leader, b_answer.member_id);
            assert_eq!(b_answer.members.len(), 1);
        })
    });
}

#[test]
fn a_member_that_never_rejoins_is_removed_at_the_rebalance_timeout() {
    run(|manager| {
        Box::pin(async move {
            let coordinator = coordinator(&manager).await;
            let a = stable_group_of_one(&coordinator, 300).await;
            let started = Instant::now();
            let b = PendingJoin::start(&coordinator, request("", 300));
            let b_answer = b.answer_within(Duration::from_secs(30)).await;
            // The phase ended at A's rebalance timeout (300 ms), and without A.
            assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
            assert_eq!((b_answer.error, b_answer.generation_id), (None, 2));
            assert_eq!(b_answer.members.len(), 1);
            assert_eq!(coordinator.heartbeat(GROUP, 2, &a), Some(ResponseError::UnknownMemberId));
        })
    });
}

/// A member's session ends at its deadline, which `expire_members` names: the shard's housekeeping wakes then
/// (not at its next 100 ms poll), so a client that waits out the session timeout after closing a static member
/// finds the group empty, as against Kafka (librdkafka's test 0081, `do_test_DescribeConsumerGroups`).
#[test]
fn expire_members_names_the_next_session_deadline_and_ends_the_session_there() {
    run(|manager| {
        Box::pin(async move {
            let coordinator = coordinator(&manager).await;
            let joined = PendingJoin::start(&coordinator, JoinRequest { session_timeout_ms: 400, ..request("", 300) })
                .answer_within(Duration::from_secs(10))
                .await;
            assert_eq!(coordinator.sync(GROUP, 1, &joined.member_id, None, None, vec![]).await.error, None);
            let before = Instant::now();
            assert_eq!(coordinator.heartbeat(GROUP, 1, &joined.member_id), None);
            let after = Instant::now();
            let deadline = coordinator.expire_members().expect("a member's deadline is ahead");
            // The deadline is the last heartbeat plus the session timeout.
            let session = Duration::from_millis(400);
            assert!(deadline >= before + session && deadline <= after + session);
            assert_eq!(coordinator.describe(GROUP).unwrap().members.len(), 1, "not expired before its deadline");
            glommio::timer::sleep(deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1)).await;
            assert_eq!(coordinator.expire_members(), None, "no member is left, so no deadline");
            assert!(coordinator.describe(GROUP).unwrap().members.is_empty());
            assert_eq!(coordinator.heartbeat(GROUP, 1, &joined.member_id), Some(ResponseError::UnknownMemberId));
        })
    });
}
