//! What a bench run reports: running totals, the summary line and the `--json` summaries the perf scripts read.

use std::sync::atomic::AtomicU64;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Default)]
pub(super) struct Totals {
    pub(super) records: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) errors: AtomicU64,
}

pub(super) struct Summary {
    pub(super) records: u64,
    pub(super) bytes: u64,
    pub(super) errors: u64,
    pub(super) seconds: f64,
    pub(super) latency: Histogram<u64>,
}

impl Summary {
    pub(super) fn line(&self, prefix: &str) -> String {
        let q = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "{prefix}{:.0} records/s, {:.1} MB/s, latency ms p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}, errors {}",
            self.records as f64 / self.seconds,
            self.bytes as f64 / self.seconds / 1e6,
            q(0.5),
            q(0.99),
            q(0.999),
            self.latency.max() as f64 / 1000.0,
            self.errors
        )
    }

    /// The latency quantiles in milliseconds, for the JSON summaries.
    pub(super) fn latency_json(&self) -> LatencyJson {
        let q = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        LatencyJson {
            p50: rounded(q(0.5), 3),
            p99: rounded(q(0.99), 3),
            p999: rounded(q(0.999), 3),
            max: rounded(self.latency.max() as f64 / 1000.0, 3),
        }
    }

    /// The summary as one JSON line, for `--json`.
    pub(super) fn json(&self) -> anyhow::Result<String> {
        json_line(&ProduceJson {
            records: self.records,
            bytes: self.bytes,
            seconds: rounded(self.seconds, 3),
            records_per_second: rounded(self.records as f64 / self.seconds, 1),
            mb_per_second: rounded(self.bytes as f64 / self.seconds / 1e6, 3),
            latency_ms: self.latency_json(),
            errors: self.errors,
        })
    }
}

/// Latency quantiles in milliseconds.
#[derive(Serialize)]
pub(super) struct LatencyJson {
    pub(super) p50: f64,
    pub(super) p99: f64,
    pub(super) p999: f64,
    pub(super) max: f64,
}

/// `sluice bench produce --json`.
#[derive(Serialize)]
pub(super) struct ProduceJson {
    pub(super) records: u64,
    pub(super) bytes: u64,
    pub(super) seconds: f64,
    pub(super) records_per_second: f64,
    pub(super) mb_per_second: f64,
    pub(super) latency_ms: LatencyJson,
    pub(super) errors: u64,
}

/// `sluice bench consume --json`.
#[derive(Serialize)]
pub(super) struct ConsumeJson {
    pub(super) records: u64,
    pub(super) bytes: u64,
    pub(super) seconds: f64,
    pub(super) records_per_second: f64,
    pub(super) mb_per_second: f64,
}

/// `sluice bench e2e --json`.
#[derive(Serialize)]
pub(super) struct E2eJson {
    pub(super) sent: u64,
    pub(super) received: u64,
    pub(super) latency_ms: LatencyJson,
    pub(super) errors: u64,
}

/// `value` with at most `decimals` digits after the point, as the summaries print it.
pub(super) fn rounded(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// One JSON object on one line, as the perf scripts read it.
pub(super) fn json_line<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string(value).context("encoding the JSON summary")? + "\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    pub(super) fn the_json_summary_is_one_line_with_the_fields_the_perf_scripts_read() {
        let mut latency = Histogram::<u64>::new(3).unwrap();
        latency.record(1_500).unwrap();
        let summary = Summary { records: 1000, bytes: 100_000, errors: 0, seconds: 2.0, latency };
        let line = summary.json().unwrap();
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["records"], 1000);
        assert_eq!(value["records_per_second"], 500.0);
        assert_eq!(value["mb_per_second"], 0.05);
        assert_eq!(value["latency_ms"]["p50"], 1.5);
        assert_eq!(rounded(2.0 / 3.0, 3), 0.667);
    }
}
