//! The security commands on the controller: CreateAcls and DeleteAcls, validated against the rules of
//! [`crate::acl::validate`], and SCRAM credential changes with Kafka's per-user checks. All are committed as
//! metadata records, so every node reads the same ACLs and credentials once it has applied them.

use std::collections::{BTreeMap, BTreeSet};

use super::commands::{AdminError, AdminErrorKind, AdminResult};
use crate::acl::{self, AclBinding, AclFilter};
use crate::metadata::{ClusterImage, MetadataRecord};
use crate::scram::{self, ScramCredential, ScramMechanism};

/// The records for the valid, new bindings, and one answer per binding. A binding that already exists is
/// answered as created, as Kafka answers it, and adds no record.
pub fn create_acls(image: &ClusterImage, wanted: &[AclBinding]) -> (Vec<MetadataRecord>, Vec<AdminResult<()>>) {
    let mut new = BTreeSet::new();
    let answers = wanted
        .iter()
        .map(|binding| {
            acl::validate(binding).map_err(|reason| AdminError::new(AdminErrorKind::InvalidRequest, reason))?;
            if !image.acls.contains(binding) {
                new.insert(binding.clone());
            }
            Ok(())
        })
        .collect();
    let records =
        if new.is_empty() { Vec::new() } else { vec![MetadataRecord::CreateAcls { acls: new.into_iter().collect() }] };
    (records, answers)
}

/// The record removing every binding a filter selects, and per filter the bindings it selected.
pub fn delete_acls(image: &ClusterImage, filters: &[AclFilter]) -> (Vec<MetadataRecord>, Vec<Vec<AclBinding>>) {
    let mut gone = BTreeSet::new();
    let answers = filters
        .iter()
        .map(|filter| {
            let matched: Vec<AclBinding> = image.acls.iter().filter(|a| filter.matches(a)).cloned().collect();
            gone.extend(matched.iter().cloned());
            matched
        })
        .collect();
    let records = if gone.is_empty() {
        Vec::new()
    } else {
        vec![MetadataRecord::DeleteAcls { acls: gone.into_iter().collect() }]
    };
    (records, answers)
}

/// Kafka's AlterUserScramCredentials rules, per user in the order first named: a user named by more than one
/// change gets DUPLICATE_RESOURCE and none of its changes apply; a deletion of a credential that does not exist
/// gets RESOURCE_NOT_FOUND; an upsertion out of Kafka's bounds gets UNACCEPTABLE_CREDENTIAL. The other users'
/// changes are committed.
pub fn alter_scram(
    image: &ClusterImage,
    deletions: &[(String, ScramMechanism)],
    upsertions: &[(String, ScramCredential)],
) -> (Vec<MetadataRecord>, Vec<(String, AdminResult<()>)>) {
    enum Change<'a> {
        Delete(ScramMechanism),
        Upsert(&'a ScramCredential),
    }
    let changes: Vec<(&str, Change)> = deletions
        .iter()
        .map(|(user, mechanism)| (user.as_str(), Change::Delete(*mechanism)))
        .chain(upsertions.iter().map(|(user, credential)| (user.as_str(), Change::Upsert(credential))))
        .collect();
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    for (user, _) in &changes {
        *times.entry(user).or_default() += 1;
    }
    let mut records = Vec::new();
    let mut answers = Vec::new();
    for (user, change) in &changes {
        let outcome = match times.remove(user) {
            None => continue, // answered at its first change
            Some(2..) => Err(AdminError::new(
                AdminErrorKind::DuplicateResource,
                "a user's credentials cannot be altered twice in one request",
            )),
            Some(_) if user.is_empty() => {
                Err(AdminError::new(AdminErrorKind::UnacceptableCredential, "the user name must not be empty"))
            }
            Some(_) => match change {
                Change::Delete(mechanism) if image.scram.get(*user).is_some_and(|c| c.contains_key(mechanism)) => {
                    records.push(MetadataRecord::DeleteScram { user: user.to_string(), mechanism: *mechanism });
                    Ok(())
                }
                Change::Delete(mechanism) => Err(AdminError::new(
                    AdminErrorKind::ResourceNotFound,
                    format!("no {} credential for user {user}", mechanism.name()),
                )),
                Change::Upsert(credential) => match scram::validate(user, credential) {
                    Ok(()) => {
                        let credential = (*credential).clone();
                        records.push(MetadataRecord::UpsertScram { user: user.to_string(), credential });
                        Ok(())
                    }
                    Err(reason) => Err(AdminError::new(AdminErrorKind::UnacceptableCredential, reason)),
                },
            },
        };
        answers.push((user.to_string(), outcome));
    }
    (records, answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AclOperation, PatternFilter, PatternType, Permission, ResourceType};

    fn binding(name: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            name: name.into(),
            pattern: PatternType::Literal,
            principal: "User:a".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn creations_are_validated_deduplicated_and_deletions_name_what_they_remove() {
        let mut image = ClusterImage::default();
        let bad = AclBinding { principal: "nobody".into(), ..binding("t") };
        let (records, answers) = create_acls(&image, &[binding("t"), bad, binding("u")]);
        assert!(answers[0].is_ok() && answers[1].is_err() && answers[2].is_ok());
        image.apply_entry(1, &records);
        assert_eq!(image.acls.len(), 2);
        let (records, answers) = create_acls(&image, &[binding("t")]);
        assert!(records.is_empty() && answers[0].is_ok(), "an existing ACL is answered as created");

        let filter = AclFilter {
            resource_type: Some(ResourceType::Topic),
            name: Some("t".into()),
            pattern: PatternFilter::Match,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        };
        let (records, answers) = delete_acls(&image, &[filter.clone(), filter]);
        assert_eq!(answers, vec![vec![binding("t")], vec![binding("t")]]);
        image.apply_entry(2, &records);
        assert_eq!(image.acls.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), vec!["u"]);
    }

    #[test]
    fn scram_changes_follow_kafkas_per_user_rules() {
        let mut image = ClusterImage::default();
        let good = ScramCredential::from_salted_password(ScramMechanism::Sha256, 4096, b"salt", b"salted");
        let weak = ScramCredential { iterations: 100, ..good.clone() };
        let upsertions =
            vec![("alice".to_string(), good.clone()), ("bob".to_string(), weak), ("carol".to_string(), good.clone())];
        let deletions =
            vec![("carol".to_string(), ScramMechanism::Sha256), ("dave".to_string(), ScramMechanism::Sha512)];
        let (records, answers) = alter_scram(&image, &deletions, &upsertions);
        let kinds: Vec<(String, Option<AdminErrorKind>)> =
            answers.into_iter().map(|(user, outcome)| (user, outcome.err().map(|e| e.kind))).collect();
        assert_eq!(
            kinds,
            vec![
                ("carol".to_string(), Some(AdminErrorKind::DuplicateResource)),
                ("dave".to_string(), Some(AdminErrorKind::ResourceNotFound)),
                ("alice".to_string(), None),
                ("bob".to_string(), Some(AdminErrorKind::UnacceptableCredential)),
            ]
        );
        image.apply_entry(1, &records);
        assert_eq!(image.scram["alice"][&ScramMechanism::Sha256], good);
        assert_eq!(image.scram.len(), 1);
        let (records, answers) = alter_scram(&image, &[("alice".to_string(), ScramMechanism::Sha256)], &[]);
        assert!(answers[0].1.is_ok());
        image.apply_entry(2, &records);
        assert!(image.scram.is_empty());
    }
}
