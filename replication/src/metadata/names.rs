//! The names metadata gives things: node ids, topic names and the owner shard of a partition.

pub type NodeId = i32;

/// The engine partition holding the metadata log (the controller quorum's Raft log).
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Producer ids are handed out in blocks; the controller persists only the next block's start.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// The shard that owns a partition: a stable hash (FNV-1a) of topic and partition, so placement is the same
/// on every restart with the same shard count and needs no table.
pub fn owner_shard(topic: &str, partition: i32, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.as_bytes().iter().chain(partition.to_be_bytes().iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % shards.max(1) as u64) as usize
}

/// Kafka's legal topic names: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name '{name}' is not allowed"));
    }
    if name.len() > 249 {
        return Err(format!("topic name is {} characters long; at most 249 are allowed", name.len()));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("topic name '{name}' contains '{bad}'; only [a-zA-Z0-9._-] are allowed"));
    }
    if name.starts_with("__cluster_metadata") {
        return Err(format!("topic name '{name}' is reserved"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn placement_is_stable_and_spread() {
        let mut counts = [0usize; 4];
        for p in 0..1000 {
            counts[owner_shard("topic", p, 4)] += 1;
        }
        assert!(counts.iter().all(|c| *c > 150), "{counts:?}");
        assert_eq!(owner_shard("a", 3, 1), 0);
        assert_eq!(owner_shard("a", 3, 7), owner_shard("a", 3, 7));
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_eu-west").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
