//! `sluice serve --add-scram`: SCRAM credentials a node adds at start, Kafka's `kafka-storage format
//! --add-scram` for Sluice, which formats its data directory itself. The password is salted here (a random
//! salt, PBKDF2 with `iterations`, 4096 by default), only for a credential the image does not hold yet, and only
//! the stored and server keys reach the metadata log.
//! A user that already has a credential for the mechanism keeps it, so a restart with the same flags changes
//! nothing; AlterUserScramCredentials changes it afterwards.

use std::rc::Rc;

use anyhow::{bail, Context};
use sluice_net::shard::Shard;
use sluice_replication::controller::commands::{ControllerRequest, ControllerResponse};
use sluice_replication::scram::{self, ScramCredential, ScramMechanism};

/// One `--add-scram` flag, checked: the password is salted and hashed only for a user that needs it.
#[derive(Debug, Clone)]
pub struct AddScram {
    pub user: String,
    pub mechanism: ScramMechanism,
    pub iterations: i32,
    salt: Vec<u8>,
    password: String,
}

/// Parses `SCRAM-SHA-256=[name=alice,password=alice-secret,iterations=8192]`.
pub fn parse(text: &str) -> anyhow::Result<AddScram> {
    let context = || format!("--add-scram {text}");
    let (mechanism, fields) = text.split_once('=').with_context(context)?;
    let Some(mechanism) = ScramMechanism::from_name(mechanism.trim()) else {
        bail!("--add-scram: unknown mechanism {}: SCRAM-SHA-256 or SCRAM-SHA-512", mechanism.trim())
    };
    let fields = fields.trim().strip_prefix('[').and_then(|f| f.strip_suffix(']')).with_context(context)?;
    let (mut name, mut password, mut iterations) = (None, None, scram::MIN_ITERATIONS);
    for field in fields.split(',') {
        match field.split_once('=') {
            Some(("name", value)) => name = Some(value.trim_matches('"').to_string()),
            Some(("password", value)) => password = Some(value.trim_matches('"').to_string()),
            Some(("iterations", value)) => iterations = value.parse().with_context(context)?,
            _ => bail!("--add-scram {text}: unknown field {field:?} (name, password, iterations)"),
        }
    }
    let user = name.with_context(|| format!("--add-scram {text}: no name"))?;
    let password = password.with_context(|| format!("--add-scram {text}: no password"))?;
    let salt = uuid::Uuid::new_v4().as_bytes().to_vec();
    scram::validate_parameters(&user, iterations, &salt)
        .map_err(|reason| anyhow::anyhow!("--add-scram {text}: {reason}"))?;
    Ok(AddScram { user, mechanism, iterations, salt, password })
}

/// Adds the credentials the image does not hold yet, through the controller. Only those are salted and hashed.
pub async fn add_missing(shard: &Rc<Shard>, wanted: &[AddScram]) -> anyhow::Result<()> {
    let image = shard.image();
    let missing: Vec<(String, ScramCredential)> = wanted
        .iter()
        .filter(|w| image.scram.get(&w.user).is_none_or(|held| !held.contains_key(&w.mechanism)))
        .map(|w| (w.user.clone(), ScramCredential::from_password(w.mechanism, w.iterations, &w.salt, &w.password)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = ControllerRequest::AlterScram { deletions: Vec::new(), upsertions: missing };
    match shard.controller_call(command).await {
        Ok(ControllerResponse::AlterScram(answers)) => {
            for (user, outcome) in answers {
                outcome.with_context(|| format!("--add-scram: the credential of {user}"))?;
                tracing::info!(%user, "SCRAM credential added (--add-scram)");
            }
            Ok(())
        }
        Ok(other) => bail!("--add-scram: unexpected controller answer {other:?}"),
        Err(error) => Err(error).context("--add-scram"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kafka_storage_forms_parse_and_bad_ones_are_refused() {
        let alice = parse("SCRAM-SHA-512=[name=alice,password=alice-secret,iterations=8192]").unwrap();
        assert_eq!((alice.user.as_str(), alice.mechanism, alice.iterations), ("alice", ScramMechanism::Sha512, 8192));
        let bob = parse(r#"SCRAM-SHA-256=[name="bob",password="pw"]"#).unwrap();
        assert_eq!((bob.user.as_str(), bob.iterations, bob.password.as_str()), ("bob", 4096, "pw"));
        assert!(parse("PLAIN=[name=a,password=b]").is_err());
        assert!(parse("SCRAM-SHA-256=[name=a]").is_err());
        assert!(parse("SCRAM-SHA-256=[name=a,password=b,iterations=10]").is_err());
        assert!(parse("SCRAM-SHA-256=name=a,password=b").is_err());
    }
}
