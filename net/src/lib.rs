//! Sluice network layer: the Kafka wire protocol, connections and one handler per API. Only this crate knows
//! Kafka error codes. Nothing is implemented yet; see ARCHITECTURE.md.
