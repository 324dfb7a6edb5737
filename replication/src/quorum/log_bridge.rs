//! raft-rs logs through `slog`; this drain hands its lines to `tracing` (target `raft`), keeping the key-value
//! pairs. Debug and trace lines are dropped here: raft-rs formats one for every message it sends.

use std::fmt::Write as _;

use slog::{Drain, Level, OwnedKVList, Record, KV};

pub struct ToTracing;

struct Pairs(String);

impl slog::Serializer for Pairs {
    fn emit_arguments(&mut self, key: slog::Key, value: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

impl Drain for ToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        if matches!(record.level(), Level::Debug | Level::Trace) {
            return Ok(());
        }
        let mut pairs = Pairs(String::new());
        let _ = record.kv().serialize(record, &mut pairs);
        let _ = values.serialize(record, &mut pairs);
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: "raft", "{}{}", record.msg(), pairs.0),
            Level::Warning => tracing::warn!(target: "raft", "{}{}", record.msg(), pairs.0),
            _ => tracing::info!(target: "raft", "{}{}", record.msg(), pairs.0),
        }
        Ok(())
    }
}
