//! DescribeUserScramCredentials (API 50), version 0: each user's SCRAM mechanisms and iteration counts (never
//! the keys), from this node's metadata image. No users named means every user with a credential. Needs
//! DESCRIBE on the cluster.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{ApiKey, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;
use sluice_replication::scram::{ScramCredential, ScramMechanism};

use super::api::{text, versions, Api};
use crate::authorize::scram_mechanism_code;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct DescribeUserScramCredentials;

impl Api for DescribeUserScramCredentials {
    const KEY: ApiKey = ApiKey::DescribeUserScramCredentials;
    const VERSIONS: VersionRange = versions(0, 0);
    type Request = DescribeUserScramCredentialsRequest;
    type Response = DescribeUserScramCredentialsResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: DescribeUserScramCredentialsRequest,
    ) -> DescribeUserScramCredentialsResponse {
        if !shard.authorized_on_cluster(header, AclOperation::Describe) {
            return DescribeUserScramCredentialsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(text("describing SCRAM credentials needs DESCRIBE on the cluster")));
        }
        let image = shard.image();
        let described = |user: &str, credentials: &BTreeMap<ScramMechanism, ScramCredential>| {
            DescribeUserScramCredentialsResult::default().with_user(text(user)).with_credential_infos(
                credentials
                    .values()
                    .map(|c| {
                        CredentialInfo::default()
                            .with_mechanism(scram_mechanism_code(c.mechanism))
                            .with_iterations(c.iterations)
                    })
                    .collect(),
            )
        };
        let failed = |user: &str, error: ResponseError, message: String| {
            DescribeUserScramCredentialsResult::default()
                .with_user(text(user))
                .with_error_code(error.code())
                .with_error_message(Some(text(&message)))
        };
        let results = match request.users.filter(|users| !users.is_empty()) {
            None => image.scram.iter().map(|(user, credentials)| described(user, credentials)).collect(),
            Some(users) => {
                let names: Vec<String> = users.iter().map(|u| u.name.to_string()).collect();
                let mut answered = Vec::new();
                let mut results = Vec::new();
                for name in &names {
                    if answered.contains(name) {
                        continue;
                    }
                    answered.push(name.clone());
                    results.push(if names.iter().filter(|n| *n == name).count() > 1 {
                        failed(name, ResponseError::DuplicateResource, format!("user {name} is named twice"))
                    } else {
                        match image.scram.get(name) {
                            Some(credentials) => described(name, credentials),
                            None => failed(name, ResponseError::ResourceNotFound, format!("no credentials for {name}")),
                        }
                    });
                }
                results
            }
        };
        DescribeUserScramCredentialsResponse::default().with_results(results)
    }
}
