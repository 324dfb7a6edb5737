//! DescribeCluster (API 60), versions 0-2: brokers, controller and cluster id from the metadata image. Fenced
//! brokers are listed only when v2's `include_fenced_brokers` asks, marked fenced. Each broker also carries
//! its broker epoch in a tagged field ([`BROKER_EPOCH_TAG`]), which Kafka clients skip and `sluice cluster
//! describe` shows.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType, CLUSTER_NAME};

use super::api::{text, versions, Api};
use super::metadata::NOT_REQUESTED;
use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

/// Tagged field of a DescribeCluster broker (v0+ are flexible) carrying its broker epoch, big-endian i64.
pub const BROKER_EPOCH_TAG: i32 = 10_000;

pub struct DescribeCluster;

impl Api for DescribeCluster {
    const KEY: ApiKey = ApiKey::DescribeCluster;
    const VERSIONS: VersionRange = versions(0, 2);
    type Request = DescribeClusterRequest;
    type Response = DescribeClusterResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: DescribeClusterRequest,
    ) -> DescribeClusterResponse {
        if !shard.authorized_on_cluster(header, AclOperation::Describe) {
            return DescribeClusterResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(text("DescribeCluster needs DESCRIBE on the cluster")));
        }
        let image = shard.image();
        let with_fenced = header.api_version >= 2 && request.include_fenced_brokers;
        let brokers = image
            .brokers
            .values()
            .filter(|broker| with_fenced || !broker.fenced)
            .map(|broker| {
                let mut entry = DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(broker.node_id))
                    .with_host(text(&broker.host))
                    .with_port(broker.port)
                    .with_rack(broker.rack.as_deref().map(text));
                if header.api_version >= 2 {
                    entry = entry.with_is_fenced(broker.fenced);
                }
                entry
                    .unknown_tagged_fields
                    .insert(BROKER_EPOCH_TAG, Bytes::copy_from_slice(&broker.epoch.to_be_bytes()));
                entry
            })
            .collect();
        DescribeClusterResponse::default()
            .with_endpoint_type(1)
            .with_cluster_id(text(&image.cluster_id))
            .with_controller_id(BrokerId(image.controller_id))
            .with_brokers(brokers)
            .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
                shard.authorized_operations(header, ResourceType::Cluster, CLUSTER_NAME)
            } else {
                NOT_REQUESTED
            })
    }
}
