//! Sluice replication: cluster membership, the controller quorum and its metadata log, leader/follower
//! replica streaming, ISR and high-watermark tracking. Built on the engine (`truncate_to`,
//! `end_offset_for_epoch`, `AppendMode::Replica`); see ARCHITECTURE.md. Nothing is implemented yet.
