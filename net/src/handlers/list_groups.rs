//! ListGroups (API 16), versions 0-5: every group of every shard, filtered by state (v4+) and by type (v5+,
//! KIP-848: "classic" or "consumer"), both without regard to case as in Kafka.

use std::rc::Rc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{text, versions, Api};
use crate::shard::Shard;
use crate::wire::RequestHeader;

fn group_id(id: &str) -> GroupId {
    GroupId(text(id))
}

pub struct ListGroups;

impl Api for ListGroups {
    const KEY: ApiKey = ApiKey::ListGroups;
    const VERSIONS: VersionRange = versions(0, 5);
    type Request = ListGroupsRequest;
    type Response = ListGroupsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: ListGroupsRequest) -> ListGroupsResponse {
        let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
        let types: Vec<String> = request.types_filter.iter().map(|s| s.to_lowercase()).collect();
        let describe_all = shard.authorized_on_cluster(header, AclOperation::Describe);
        let calls =
            (0..shard.shards()).map(|target| shard.run_on(target, |shard| async move { shard.coordinator.list() }));
        let mut groups: Vec<_> = futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .filter(|g| states.is_empty() || states.contains(&g.state.to_lowercase()))
            .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
            // Kafka's rule: DESCRIBE on the cluster lists every group, else only those the client may describe.
            .filter(|g| describe_all || shard.authorized(header, AclOperation::Describe, ResourceType::Group, &g.id))
            .collect();
        groups.sort();
        let listed = groups
            .into_iter()
            .map(|g| {
                let mut listed =
                    ListedGroup::default().with_group_id(group_id(&g.id)).with_protocol_type(text(&g.protocol_type));
                if header.api_version >= 4 {
                    listed = listed.with_group_state(text(g.state));
                }
                if header.api_version >= 5 {
                    listed = listed.with_group_type(text(g.group_type));
                }
                listed
            })
            .collect();
        ListGroupsResponse::default().with_groups(listed)
    }
}
