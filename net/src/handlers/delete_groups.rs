//! DeleteGroups (API 42), versions 0-2: an empty group goes, with its committed offsets.

use std::rc::Rc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;

use super::api::{versions, Api};
use super::group_routing::{code, coordinator_shard};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct DeleteGroups;

impl Api for DeleteGroups {
    const KEY: ApiKey = ApiKey::DeleteGroups;
    const VERSIONS: VersionRange = versions(0, 2);
    type Request = DeleteGroupsRequest;
    type Response = DeleteGroupsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
        let mut results = Vec::new();
        for id in request.groups_names {
            let name = id.to_string();
            let error = match coordinator_shard(shard, header, AclOperation::Delete, &name) {
                Err(error) => Some(error),
                Ok(target) => {
                    shard.run_on(target, move |shard| async move { shard.coordinator.delete_group(&name).await }).await
                }
            };
            results.push(DeletableGroupResult::default().with_group_id(id).with_error_code(code(error)));
        }
        DeleteGroupsResponse::default().with_results(results)
    }
}
