//! What the group APIs share: finding the coordinator shard of a group, the owner of its `__consumer_offsets`
//! partition, where every request for the group runs; and the error code of an optional error.

use sluice_replication::acl::{AclOperation, ResourceType};

use crate::error::ResponseError;
use crate::groups::{partition_for_group, OFFSETS_TOPIC};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

/// The coordinator shard for a group, once the request may do `operation` on it (Kafka's per-API operation:
/// READ to join, sync, heartbeat, leave and commit; DESCRIBE to describe and fetch offsets; DELETE to delete).
/// GROUP_AUTHORIZATION_FAILED when it may not; COORDINATOR_NOT_AVAILABLE before `__consumer_offsets` exists.
/// Every group API finds its group's shard here, so none can skip the check.
pub fn coordinator_shard(
    shard: &Shard,
    header: &RequestHeader,
    operation: AclOperation,
    group: &str,
) -> Result<usize, ResponseError> {
    if !shard.authorized(header, operation, ResourceType::Group, group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let image = shard.image();
    let partitions =
        image.topic(OFFSETS_TOPIC).map(|t| t.partitions.len() as i32).ok_or(ResponseError::CoordinatorNotAvailable)?;
    Ok(shard.owner(OFFSETS_TOPIC, partition_for_group(group, partitions)))
}
