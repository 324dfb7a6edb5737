//! AlterUserScramCredentials (API 51), version 0: upserts and deletes users' SCRAM credentials through the
//! controller. The salted password each upsertion carries becomes Kafka's stored and server keys here, on the
//! receiving broker; only those keys, the salt and the iteration count go to the metadata log. One result per
//! user; needs ALTER on the cluster.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;
use sluice_replication::controller::commands::{ControllerRequest, ControllerResponse};
use sluice_replication::scram::ScramCredential;

use super::api::{text, versions, Api};
use crate::authorize::scram_mechanism;
use crate::error::admin_error;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct AlterUserScramCredentials;

impl Api for AlterUserScramCredentials {
    const KEY: ApiKey = ApiKey::AlterUserScramCredentials;
    const VERSIONS: VersionRange = versions(0, 0);
    type Request = AlterUserScramCredentialsRequest;
    type Response = AlterUserScramCredentialsResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: AlterUserScramCredentialsRequest,
    ) -> AlterUserScramCredentialsResponse {
        let result = |user: &str, failure: Option<(ResponseError, String)>| {
            let result = AlterUserScramCredentialsResult::default().with_user(text(user));
            match failure {
                Some((error, message)) => result.with_error_code(error.code()).with_error_message(Some(text(&message))),
                None => result,
            }
        };
        let mut users: Vec<String> = Vec::new();
        for name in request.deletions.iter().map(|d| &d.name).chain(request.upsertions.iter().map(|u| &u.name)) {
            if !users.iter().any(|u| u == name.as_str()) {
                users.push(name.to_string());
            }
        }
        if !shard.authorized_on_cluster(header, AclOperation::Alter) {
            let refusal = (ResponseError::ClusterAuthorizationFailed, "needs ALTER on the cluster".to_string());
            return AlterUserScramCredentialsResponse::default()
                .with_results(users.iter().map(|user| result(user, Some(refusal.clone()))).collect());
        }
        // A change naming no known mechanism fails its user here; the controller checks the rest.
        let mut unsupported: Vec<String> = Vec::new();
        let mut deletions = Vec::new();
        for deletion in &request.deletions {
            match scram_mechanism(deletion.mechanism) {
                Some(mechanism) => deletions.push((deletion.name.to_string(), mechanism)),
                None => unsupported.push(deletion.name.to_string()),
            }
        }
        let mut upsertions = Vec::new();
        for upsertion in &request.upsertions {
            match scram_mechanism(upsertion.mechanism) {
                Some(mechanism) => upsertions.push((
                    upsertion.name.to_string(),
                    ScramCredential::from_salted_password(
                        mechanism,
                        upsertion.iterations,
                        &upsertion.salt,
                        &upsertion.salted_password,
                    ),
                )),
                None => unsupported.push(upsertion.name.to_string()),
            }
        }
        deletions.retain(|(user, _)| !unsupported.contains(user));
        upsertions.retain(|(user, _)| !unsupported.contains(user));
        let answers = match shard.controller_call(ControllerRequest::AlterScram { deletions, upsertions }).await {
            Ok(ControllerResponse::AlterScram(answers)) => Ok(answers),
            Ok(other) => Err((ResponseError::UnknownServerError, format!("unexpected answer {other:?}"))),
            Err(error) => Err((admin_error(&error), error.message)),
        };
        let results = users
            .iter()
            .map(|user| {
                let failure = if unsupported.contains(user) {
                    Some((ResponseError::UnsupportedSaslMechanism, "unknown SCRAM mechanism".to_string()))
                } else {
                    match &answers {
                        Err(failure) => Some(failure.clone()),
                        Ok(answers) => match answers.iter().find(|(u, _)| u == user) {
                            Some((_, Err(error))) => Some((admin_error(error), error.message.clone())),
                            Some((_, Ok(()))) | None => None,
                        },
                    }
                };
                result(user, failure)
            })
            .collect();
        AlterUserScramCredentialsResponse::default().with_results(results)
    }
}
