//! DescribeGroups (API 15), versions 0-5: state, protocol and members of each group, from its coordinator
//! shard ("Dead" for a group that does not exist).

use std::rc::Rc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{text, versions, Api};
use super::group_routing::coordinator_shard;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct DescribeGroups;

impl Api for DescribeGroups {
    const KEY: ApiKey = ApiKey::DescribeGroups;
    const VERSIONS: VersionRange = versions(0, 5);
    type Request = DescribeGroupsRequest;
    type Response = DescribeGroupsResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: DescribeGroupsRequest,
    ) -> DescribeGroupsResponse {
        let mut groups = Vec::new();
        for id in request.groups {
            let name = id.to_string();
            let result = DescribedGroup::default().with_group_id(id.clone());
            let described = match coordinator_shard(shard, header, AclOperation::Describe, &name) {
                Err(error) => Err(error),
                Ok(target) => {
                    let lookup = name.clone();
                    Ok(shard.run_on(target, move |shard| async move { shard.coordinator.describe(&lookup) }).await)
                }
            };
            let result = match described {
                Err(error) => result.with_error_code(error.code()),
                Ok(None) => result.with_group_state(text("Dead")),
                Ok(Some(group)) => result
                    .with_group_state(text(group.state.name()))
                    .with_protocol_type(text(&group.protocol_type))
                    .with_protocol_data(text(&group.protocol))
                    .with_members(
                        group
                            .members
                            .iter()
                            .map(|m| {
                                let member = DescribedGroupMember::default()
                                    .with_member_id(text(&m.member_id))
                                    .with_client_id(text(&m.client_id))
                                    .with_client_host(text(&m.client_host))
                                    .with_member_metadata(m.metadata.clone())
                                    .with_member_assignment(m.assignment.clone());
                                if header.api_version >= 4 {
                                    member.with_group_instance_id(m.instance_id.as_deref().map(text))
                                } else {
                                    member
                                }
                            })
                            .collect(),
                    ),
            };
            let result = if header.api_version >= 3 && request.include_authorized_operations {
                result.with_authorized_operations(shard.authorized_operations(header, ResourceType::Group, &name))
            } else {
                result
            };
            groups.push(result);
        }
        DescribeGroupsResponse::default().with_groups(groups)
    }
}
