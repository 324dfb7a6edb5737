//! CreateAcls and DeleteAcls on the controller: validated against the rules of [`crate::acl::validate`],
//! committed as metadata records, so every node's authorizer reads the same set once it has applied them.

use std::collections::BTreeSet;

use super::commands::{AdminError, AdminErrorKind, AdminResult};
use crate::acl::{self, AclBinding, AclFilter};
use crate::metadata::{ClusterImage, MetadataRecord};

/// The records for the valid, new bindings, and one answer per binding. A binding that already exists is
/// answered as created, as Kafka answers it, and adds no record.
pub fn create(image: &ClusterImage, wanted: &[AclBinding]) -> (Vec<MetadataRecord>, Vec<AdminResult<()>>) {
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
pub fn delete(image: &ClusterImage, filters: &[AclFilter]) -> (Vec<MetadataRecord>, Vec<Vec<AclBinding>>) {
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
        let (records, answers) = create(&image, &[binding("t"), bad, binding("u")]);
        assert!(answers[0].is_ok() && answers[1].is_err() && answers[2].is_ok());
        image.apply_entry(1, &records);
        assert_eq!(image.acls.len(), 2);
        let (records, answers) = create(&image, &[binding("t")]);
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
        let (records, answers) = delete(&image, &[filter.clone(), filter]);
        assert_eq!(answers, vec![vec![binding("t")], vec![binding("t")]]);
        image.apply_entry(2, &records);
        assert_eq!(image.acls.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), vec!["u"]);
    }
}
