//! ListGroups (API 16), versions 0-4: every group of every shard, filtered by state (v4+).

use std::rc::Rc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::VersionRange;

use super::api::{text, versions, Api};
use crate::shard::Shard;
use crate::wire::RequestHeader;

fn group_id(id: &str) -> GroupId {
    GroupId(text(id))
}

pub struct ListGroups;

impl Api for ListGroups {
    const KEY: ApiKey = ApiKey::ListGroups;
    const VERSIONS: VersionRange = versions(0, 4);
    type Request = ListGroupsRequest;
    type Response = ListGroupsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: ListGroupsRequest) -> ListGroupsResponse {
        let filter: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
        let calls =
            (0..shard.shards()).map(|target| shard.run_on(target, |shard| async move { shard.coordinator.list() }));
        let mut groups: Vec<(String, String, &str)> = futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .map(|(id, protocol_type, state)| (id, protocol_type, state.name()))
            .filter(|(_, _, state)| filter.is_empty() || filter.contains(&state.to_lowercase()))
            .collect();
        groups.sort();
        let listed = groups
            .into_iter()
            .map(|(id, protocol_type, state)| {
                let listed =
                    ListedGroup::default().with_group_id(group_id(&id)).with_protocol_type(text(&protocol_type));
                if header.api_version >= 4 {
                    listed.with_group_state(text(state))
                } else {
                    listed
                }
            })
            .collect();
        ListGroupsResponse::default().with_groups(listed)
    }
}
