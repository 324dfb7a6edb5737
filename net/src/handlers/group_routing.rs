//! What the group APIs share: finding the coordinator shard of a group, the owner of its `__consumer_offsets`
//! partition, where every request for the group runs; and the error code of an optional error.

use crate::error::ResponseError;
use crate::groups::{partition_for_group, OFFSETS_TOPIC};
use crate::shard::Shard;

pub fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

/// The coordinator shard for a group, or COORDINATOR_NOT_AVAILABLE before `__consumer_offsets` exists.
pub fn coordinator_shard(shard: &Shard, group: &str) -> Result<usize, ResponseError> {
    let image = shard.image();
    let partitions =
        image.topic(OFFSETS_TOPIC).map(|t| t.partitions.len() as i32).ok_or(ResponseError::CoordinatorNotAvailable)?;
    Ok(shard.owner(OFFSETS_TOPIC, partition_for_group(group, partitions)))
}
