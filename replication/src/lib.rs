//! Sluice replication: the cluster's control plane and partition replication.
//!
//! - [`acl`]: access control lists and the authorizer's decision (Kafka's StandardAuthorizer rules).
//! - [`config`]: broker and topic configuration under Kafka's names.
//! - [`metadata`]: the metadata records, the cluster image they build, and replica placement.
//! - [`quorum`]: the controller quorum, a Raft group on raft-rs whose log is the engine partition
//!   `__cluster_metadata-0`.
//! - [`controller`]: the active controller, single writer of the metadata log: typed commands, broker
//!   sessions and fencing, leader elections, reassignments.
//! - [`transport`]: what nodes say to each other on the controller listener, defined here and carried by
//!   `net`.
//! - [`broker`]: a broker's side of the control plane: reaching the controller, registration, heartbeats,
//!   following the metadata log.
//! - [`node`]: one node's control plane put together, and what it answers on the controller listener.
//! - [`scram`]: SCRAM credentials as Kafka keeps them (stored and server keys from a salted password).
//! - [`replica`]: partition replication on a shard: leaders, followers, fetchers, ISR, high watermark.
//!
//! Depends only on the engine; knows no Kafka bytes and no Kafka error codes.

pub mod acl;
pub mod broker;
pub mod config;
pub mod controller;
pub mod metadata;
pub mod node;
pub mod quorum;
pub mod replica;
pub mod scram;
pub mod transport;
