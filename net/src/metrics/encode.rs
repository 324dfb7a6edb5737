//! The encoding helpers every part of the exposition uses: counters, gauges and histograms written through
//! `prometheus-client`, one series per label set.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use sluice_engine::stats::HistogramSnapshot;

pub(super) type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

pub(super) fn counter<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'a, N>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

pub(super) fn gauge<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'a, N>, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge with one series and no labels.
pub(super) fn single_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(signed(value)).encode(metric)
}

/// A counter with one series and no labels.
pub(super) fn single_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(metric)
}

/// A histogram of nanoseconds, written in seconds, one series per label set.
pub(super) fn seconds_histogram<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'a, N>, &'a HistogramSnapshot)>,
) -> Result<(), std::fmt::Error> {
    histogram(encoder, name, help, Some(Unit::Seconds), 1e-9, series)
}

/// A histogram, one series per label set, its bounds and sum multiplied by `scale` (1e-9 from nanoseconds to
/// seconds, 1 for counts).
pub(super) fn histogram<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    scale: f64,
    series: impl IntoIterator<Item = (Labels<'a, N>, &'a HistogramSnapshot)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Histogram)?;
    for (labels, snapshot) in series {
        // Per bucket, as prometheus-client takes them: it writes the cumulative counts.
        let buckets: Vec<(f64, u64)> = snapshot
            .buckets
            .iter()
            .enumerate()
            .map(|(index, &count)| (snapshot.bounds.get(index).map_or(f64::MAX, |&bound| bound as f64 * scale), count))
            .collect();
        let (sum, count) = (snapshot.sum as f64 * scale, snapshot.count());
        // A series without labels is written without braces, as Prometheus writes it.
        if labels.is_empty() {
            metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)?;
        } else {
            metric
                .encode_family(&labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)?;
        }
    }
    Ok(())
}

pub(super) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
