//! One handler per Kafka API. Each runs on the shard that owns the connection, sends per-partition work to
//! the owning shards and controller work to shard 0, and returns the encoded response.
//!
//! Produce and Fetch live in `crate::produce` and `crate::fetch`: they are hand-written for zero copy.

pub mod api_versions;
pub mod configs;
pub mod delete_records;
pub mod describe_cluster;
pub mod groups;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod topics;

use std::rc::Rc;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::protocol::{encode_response, Decoded, Request};
use crate::response::Response;
use crate::shard::Shard;

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// Runs one decoded request to its response.
pub async fn dispatch(shard: &Rc<Shard>, decoded: Decoded) -> Response {
    let (header, request) = match decoded {
        Decoded::Unsupported(header) => return Response::Frame(api_versions::unsupported(&header)),
        Decoded::Request(header, request) => (header, request),
    };
    let frame = match *request {
        Request::ApiVersions(_) => api_versions::handle(&header),
        Request::Metadata(request) => encode_response(&header, &metadata::handle(shard, &header, request).await),
        Request::Produce(request) => match crate::produce::handle(shard, &header, request).await {
            Some(frame) => frame,
            None => return Response::None,
        },
        Request::Fetch(request) => return crate::fetch::handle(shard, &header, request).await,
        Request::ListOffsets(request) => encode_response(&header, &list_offsets::handle(shard, &header, request).await),
        Request::OffsetForLeaderEpoch(request) => {
            encode_response(&header, &offset_for_leader_epoch::handle(shard, request).await)
        }
        Request::InitProducerId(request) => encode_response(&header, &init_producer_id::handle(shard, request).await),
        Request::CreateTopics(request) => encode_response(&header, &topics::create_topics(shard, request).await),
        Request::DeleteTopics(request) => {
            encode_response(&header, &topics::delete_topics(shard, header.api_version, request).await)
        }
        Request::CreatePartitions(request) => {
            encode_response(&header, &topics::create_partitions(shard, request).await)
        }
        Request::DescribeConfigs(request) => encode_response(&header, &configs::describe(shard, request)),
        Request::AlterConfigs(request) => encode_response(&header, &configs::alter(shard, request).await),
        Request::IncrementalAlterConfigs(request) => {
            encode_response(&header, &configs::incremental_alter(shard, request).await)
        }
        Request::DescribeCluster(request) => encode_response(&header, &describe_cluster::handle(shard, &request)),
        Request::DeleteRecords(request) => encode_response(&header, &delete_records::handle(shard, request).await),
        Request::FindCoordinator(request) => {
            encode_response(&header, &groups::find_coordinator(shard, &header, request))
        }
        Request::JoinGroup(request) => {
            let host = header.client_host.clone();
            encode_response(&header, &groups::join_group(shard, &header, host, request).await)
        }
        Request::SyncGroup(request) => encode_response(&header, &groups::sync_group(shard, &header, request).await),
        Request::Heartbeat(request) => encode_response(&header, &groups::heartbeat(shard, request).await),
        Request::LeaveGroup(request) => encode_response(&header, &groups::leave_group(shard, &header, request).await),
        Request::OffsetCommit(request) => encode_response(&header, &groups::offset_commit(shard, request).await),
        Request::OffsetFetch(request) => encode_response(&header, &groups::offset_fetch(shard, &header, request).await),
        Request::DescribeGroups(request) => {
            encode_response(&header, &groups::describe_groups(shard, &header, request).await)
        }
        Request::ListGroups(request) => encode_response(&header, &groups::list_groups(shard, &header, request).await),
        Request::DeleteGroups(request) => encode_response(&header, &groups::delete_groups(shard, request).await),
        Request::OffsetDelete(request) => encode_response(&header, &groups::offset_delete(shard, request).await),
        Request::ConsumerGroupHeartbeat(request) => {
            encode_response(&header, &groups::consumer_group_heartbeat(shard, &header, request).await)
        }
        Request::ConsumerGroupDescribe(request) => {
            encode_response(&header, &groups::consumer_group_describe(shard, request).await)
        }
    };
    Response::Frame(frame)
}
