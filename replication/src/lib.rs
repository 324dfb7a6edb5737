//! Sluice replication: cluster membership, the controller and its metadata log, and (next) leader/follower
//! replica streaming, ISR and high-watermark tracking.
//!
//! Today it holds what a single broker needs and a cluster will reuse: the configuration registry under
//! Kafka's names ([`config`]), the metadata records and image with partition placement ([`metadata`]), and
//! the local controller that is the metadata log's single writer ([`controller`]). Depends only on the engine.

pub mod config;
pub mod controller;
pub mod metadata;
