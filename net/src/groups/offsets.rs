//! Committed offsets: OffsetCommit (checked against the group's generation or member epoch, and durable
//! before the answer), OffsetFetch, OffsetDelete, DeleteGroups, and the expiry of offsets of groups that
//! stayed empty past `offsets.retention.minutes`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use sluice_engine::types::now_ms;

use super::store::{group_record, offset_record, Persisted};
use super::table::{CommittedOffset, Coordinator, Group, GroupResult, GroupState};
use crate::error::ResponseError;

impl Coordinator {
    /// Checks an OffsetCommit against the group; creates a memberless group for simple commits.
    fn check_commit(&self, group_id: &str, generation: i32, member_id: &str) -> GroupResult<Rc<RefCell<Group>>> {
        self.log_for(group_id)?;
        let group_rc = match self.group(group_id) {
            Some(group) => group,
            None if generation < 0 => self.group_or_create(group_id),
            None => return Err(ResponseError::IllegalGeneration),
        };
        {
            let mut group = group_rc.borrow_mut();
            if let Some(consumer) = group.consumer.as_mut() {
                return match consumer.check_commit(member_id, generation) {
                    None => Ok(group_rc.clone()),
                    Some(error) => Err(error),
                };
            }
            if generation < 0 && member_id.is_empty() {
                if group.members.is_empty() {
                    return Ok(group_rc.clone());
                }
                return Err(ResponseError::UnknownMemberId);
            }
            let state = group.state;
            let current = group.generation;
            let Some(member) = group.members.get_mut(member_id) else { return Err(ResponseError::UnknownMemberId) };
            member.last_heartbeat = Instant::now();
            if generation != current {
                return Err(ResponseError::IllegalGeneration);
            }
            // Kafka's rule (ClassicGroup.validateOffsetCommit): a member of the current generation commits
            // while a rebalance is being prepared (a cooperative consumer keeps consuming, and committing,
            // what it still owns), but not between the JoinGroup answers and the leader's assignment.
            if state == GroupState::CompletingRebalance {
                return Err(ResponseError::RebalanceInProgress);
            }
        }
        Ok(group_rc)
    }

    /// OffsetCommit. `offsets` are (topic, partition, offset, leader epoch, metadata) already checked for
    /// existence; returns one error per offset, in order.
    pub async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        offsets: Vec<(String, i32, i64, i32, Option<String>)>,
    ) -> Vec<Option<ResponseError>> {
        let group_rc = match self.check_commit(group_id, generation, member_id) {
            Ok(group) => group,
            Err(error) => return vec![Some(error); offsets.len()],
        };
        let max_metadata = self.config().offset_metadata_max_bytes;
        let now = now_ms();
        let mut results = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (topic, partition, offset, leader_epoch, metadata) in offsets {
            let metadata = metadata.unwrap_or_default();
            if metadata.len() > max_metadata {
                results.push(Some(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            let committed = CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms: now };
            records.push(offset_record(group_id, &topic, partition, Some(&committed)));
            accepted.push(((topic, partition), committed));
            results.push(None);
        }
        let first_record = {
            let group = group_rc.borrow();
            (group.offsets.is_empty() && group.members.is_empty()).then(|| group_record(&group, true))
        };
        records.extend(first_record);
        if let Err(error) = self.persist(group_id, records).await {
            return results.into_iter().map(|r| r.or(Some(error))).collect();
        }
        let mut group = group_rc.borrow_mut();
        for (key, committed) in accepted {
            group.offsets.insert(key, committed);
        }
        results
    }

    /// Committed offsets of a group: all of them, or those asked for (-1 where none). Refused, as Kafka does,
    /// while the group's partition is not served here (NOT_COORDINATOR), still loading
    /// (COORDINATOR_LOAD_IN_PROGRESS) or refused (COORDINATOR_NOT_AVAILABLE): "no offset" then would send a
    /// consumer to its `auto.offset.reset` position instead of where its group stopped.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, i32)>>,
    ) -> GroupResult<Vec<(String, i32, Option<CommittedOffset>)>> {
        self.log_for(group_id)?;
        let group = self.group(group_id);
        Ok(match wanted {
            Some(wanted) => wanted
                .into_iter()
                .map(|(topic, partition)| {
                    let found =
                        group.as_ref().and_then(|g| g.borrow().offsets.get(&(topic.clone(), partition)).cloned());
                    (topic, partition, found)
                })
                .collect(),
            None => group
                .map(|g| g.borrow().offsets.iter().map(|((t, p), o)| (t.clone(), *p, Some(o.clone()))).collect())
                .unwrap_or_default(),
        })
    }

    /// DeleteGroups for one group: only an empty group, with all its offsets.
    pub async fn delete_group(&self, group_id: &str) -> Option<ResponseError> {
        if let Err(error) = self.log_for(group_id) {
            return Some(error);
        }
        let Some(group_rc) = self.group(group_id) else { return Some(ResponseError::GroupIdNotFound) };
        let records = {
            let group = group_rc.borrow();
            if group.state != GroupState::Empty || !group.members.is_empty() {
                return Some(ResponseError::NonEmptyGroup);
            }
            let mut records: Vec<Persisted> =
                group.offsets.keys().map(|(t, p)| offset_record(group_id, t, *p, None)).collect();
            records.push(group_record(&group, false));
            records
        };
        if let Err(error) = self.persist(group_id, records).await {
            return Some(error);
        }
        group_rc.borrow_mut().set_state(GroupState::Dead);
        self.groups.borrow_mut().remove(group_id);
        None
    }

    /// OffsetDelete: removes offsets of topics the group is not subscribed to.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.log_for(group_id)?;
        let Some(group_rc) = self.group(group_id) else { return Err(ResponseError::GroupIdNotFound) };
        let (results, records) = {
            let group = group_rc.borrow();
            let subscribed = if group.state == GroupState::Empty { Vec::new() } else { group.subscribed_topics() };
            let mut results = Vec::new();
            let mut records = Vec::new();
            for (topic, partition) in &partitions {
                if subscribed.contains(topic) {
                    results.push(Some(ResponseError::GroupSubscribedToTopic));
                } else {
                    if group.offsets.contains_key(&(topic.clone(), *partition)) {
                        records.push(offset_record(group_id, topic, *partition, None));
                    }
                    results.push(None);
                }
            }
            (results, records)
        };
        self.persist(group_id, records).await?;
        let mut group = group_rc.borrow_mut();
        for ((topic, partition), result) in partitions.iter().zip(&results) {
            if result.is_none() {
                group.offsets.remove(&(topic.clone(), *partition));
            }
        }
        Ok(results)
    }

    /// Drops the offsets of groups that have been empty for longer than `offsets.retention.minutes`.
    pub async fn expire_offsets(&self) {
        let retention = self.config().offsets_retention_ms;
        let now = now_ms();
        let expired: Vec<(String, Vec<(String, i32)>)> = self
            .groups
            .borrow()
            .values()
            .filter_map(|g| {
                let g = g.borrow();
                (g.state == GroupState::Empty && now - g.state_changed_ms > retention).then(|| {
                    (
                        g.id.clone(),
                        g.offsets
                            .iter()
                            .filter(|(_, o)| now - o.commit_timestamp_ms > retention)
                            .map(|(k, _)| k.clone())
                            .collect(),
                    )
                })
            })
            .collect();
        for (group_id, keys) in expired {
            if keys.is_empty() {
                continue;
            }
            let records = keys.iter().map(|(t, p)| offset_record(&group_id, t, *p, None)).collect();
            if self.persist(&group_id, records).await.is_ok() {
                if let Some(group) = self.group(&group_id) {
                    let mut group = group.borrow_mut();
                    for key in &keys {
                        group.offsets.remove(key);
                    }
                    tracing::info!(group = group_id, partitions = keys.len(), "expired committed offsets");
                }
            }
        }
    }
}
