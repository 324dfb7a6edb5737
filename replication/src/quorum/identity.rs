//! `meta.properties`: who this data directory belongs to, in Kafka's format.
//!
//! ```text
//! #
//! # Written by Sluice; do not edit.
//! cluster.id=<22-character id, absent until the node has learned it>
//! directory.id=<22-character id, chosen when the directory is first used>
//! node.id=<the node id>
//! version=1
//! ```
//!
//! The node id is checked at every start (a directory moved to another node is refused), and so is the
//! cluster id once known (a node of another cluster is refused). The directory id tells a voter that lost its
//! disk from one that kept it: the quorum records each controller's directory id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::metadata::NodeId;

pub const META_PROPERTIES: &str = "meta.properties";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub node_id: NodeId,
    pub directory_id: String,
    /// Empty until learned.
    pub cluster_id: String,
    /// The file did not exist: this directory is new.
    pub fresh: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is unreadable: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "{path} says this data directory belongs to node {found}, but node.id is {configured}: point log.dirs at \
         node {configured}'s own directory"
    )]
    OtherNode { path: PathBuf, found: NodeId, configured: NodeId },
    #[error(
        "{path} says this node belongs to cluster {stored}, but the quorum's cluster is {quorum}: this data \
         directory is from another cluster; give the node an empty directory or its own cluster's"
    )]
    OtherCluster { path: PathBuf, stored: String, quorum: String },
}

/// A new random id in Kafka's form (16 random bytes, URL-safe base64 without padding).
pub fn new_directory_id() -> String {
    crate::controller::new_cluster_id()
}

fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

fn write(path: &Path, identity: &Identity) -> Result<(), IdentityError> {
    let mut text = String::from("#\n# Written by Sluice; do not edit.\n");
    if !identity.cluster_id.is_empty() {
        text.push_str(&format!("cluster.id={}\n", identity.cluster_id));
    }
    text.push_str(&format!("directory.id={}\nnode.id={}\nversion=1\n", identity.directory_id, identity.node_id));
    let tmp = path.with_extension("properties.tmp");
    let io = |source| IdentityError::Io { path: path.to_path_buf(), source };
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

/// Reads (or, for a new directory, creates) the identity of `data_dir` for node `node_id`. Blocking: call it
/// before the shards start.
pub fn load_or_create(data_dir: &Path, node_id: NodeId) -> Result<Identity, IdentityError> {
    let path = data_dir.join(META_PROPERTIES);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let fields = parse(&text);
            let unreadable = |reason: &str| IdentityError::Unreadable { path: path.clone(), reason: reason.into() };
            let found: NodeId = fields
                .get("node.id")
                .ok_or_else(|| unreadable("no node.id"))?
                .parse()
                .map_err(|_| unreadable("node.id is not a number"))?;
            if found != node_id {
                return Err(IdentityError::OtherNode { path, found, configured: node_id });
            }
            let directory_id = fields.get("directory.id").cloned().ok_or_else(|| unreadable("no directory.id"))?;
            Ok(Identity {
                node_id,
                directory_id,
                cluster_id: fields.get("cluster.id").cloned().unwrap_or_default(),
                fresh: false,
            })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let identity =
                Identity { node_id, directory_id: new_directory_id(), cluster_id: String::new(), fresh: true };
            write(&path, &identity)?;
            Ok(identity)
        }
        Err(source) => Err(IdentityError::Io { path, source }),
    }
}

/// Records the cluster id once learned, or refuses a directory of another cluster. Blocking (a small file,
/// once per node life).
pub fn learn_cluster_id(data_dir: &Path, identity: &mut Identity, cluster_id: &str) -> Result<(), IdentityError> {
    if cluster_id.is_empty() || identity.cluster_id == cluster_id {
        return Ok(());
    }
    let path = data_dir.join(META_PROPERTIES);
    if !identity.cluster_id.is_empty() {
        return Err(IdentityError::OtherCluster {
            path,
            stored: identity.cluster_id.clone(),
            quorum: cluster_id.to_string(),
        });
    }
    identity.cluster_id = cluster_id.to_string();
    write(&path, identity)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn identity_is_created_once_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = load_or_create(dir.path(), 3).unwrap();
        assert!(first.fresh);
        assert_eq!(first.directory_id.len(), 22);
        learn_cluster_id(dir.path(), &mut first, "abc").unwrap();
        let again = load_or_create(dir.path(), 3).unwrap();
        assert!(!again.fresh);
        assert_eq!((again.directory_id.as_str(), again.cluster_id.as_str()), (first.directory_id.as_str(), "abc"));
        assert!(matches!(load_or_create(dir.path(), 4), Err(IdentityError::OtherNode { found: 3, .. })));
        let mut again = again;
        assert!(matches!(learn_cluster_id(dir.path(), &mut again, "other"), Err(IdentityError::OtherCluster { .. })));
    }
}
