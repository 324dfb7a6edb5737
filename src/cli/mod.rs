//! `sluice topic`, `sluice produce`, `sluice consume`, `sluice group` and `sluice cluster`: command-line tools on
//! the client in `sluice_net::client`. They work against any Kafka-compatible broker or cluster: requests for a
//! partition go to its leader and requests for a group to its coordinator ([`route::Router`]).

mod cluster;
mod group;
mod records;
mod requests;
mod route;
mod topic;

pub use cluster::{cluster, ClusterCommand};
pub use group::{group, GroupCommand};
pub use records::{consume, produce, ConsumeArgs, ProduceArgs};
pub(crate) use requests::connect_any;
pub(crate) use route::Router;
pub use topic::{topic, TopicCommand};
