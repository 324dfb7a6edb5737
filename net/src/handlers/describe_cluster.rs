//! DescribeCluster (API 60), versions 0-1: brokers, controller and cluster id from the metadata image.

use std::rc::Rc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::VersionRange;

use super::api::{text, versions, Api};
use super::metadata::{CLUSTER_OPERATIONS, NOT_REQUESTED};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct DescribeCluster;

impl Api for DescribeCluster {
    const KEY: ApiKey = ApiKey::DescribeCluster;
    const VERSIONS: VersionRange = versions(0, 1);
    type Request = DescribeClusterRequest;
    type Response = DescribeClusterResponse;

    async fn handle(
        shard: &Rc<Shard>,
        _header: &RequestHeader,
        request: DescribeClusterRequest,
    ) -> DescribeClusterResponse {
        let image = shard.image();
        let brokers = image
            .brokers
            .values()
            .map(|broker| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(broker.node_id))
                    .with_host(text(&broker.host))
                    .with_port(broker.port)
                    .with_rack(broker.rack.as_deref().map(text))
            })
            .collect();
        DescribeClusterResponse::default()
            .with_endpoint_type(1)
            .with_cluster_id(text(&image.cluster_id))
            .with_controller_id(BrokerId(image.controller_id))
            .with_brokers(brokers)
            .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
                CLUSTER_OPERATIONS
            } else {
                NOT_REQUESTED
            })
    }
}
