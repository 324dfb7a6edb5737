//! `sluice top`: a live terminal view of one broker or several, built from their `/metrics` (the admin
//! listener). Every interval it scrapes each broker, and draws the difference from the previous scrape: the
//! topics with the most bytes in per second, request rates and latency percentiles per API (from the latency
//! histogram's buckets), replication health, and the consumer groups with the most lag. `--once` draws one
//! frame from two scrapes an interval apart and exits, for scripts and tests.
//!
//! Bounded: each scrape has a connect and read timeout and reads at most [`MAX_BODY_BYTES`]; the view keeps
//! the top [`ROWS`] of each list.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The most bytes read from one `/metrics` answer.
const MAX_BODY_BYTES: u64 = 64 << 20;
/// Rows shown in each list.
const ROWS: usize = 10;
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(clap::Args)]
pub struct TopArgs {
    /// Admin listeners to watch (`admin.listeners` of each broker), comma-separated.
    #[arg(long, default_value = "localhost:9644", value_delimiter = ',')]
    admin: Vec<String>,
    /// Seconds between frames.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Draw one frame (from two scrapes an interval apart) and exit.
    #[arg(long)]
    once: bool,
    /// Stop after this many frames (default: until interrupted).
    #[arg(long)]
    frames: Option<u64>,
}

/// One scrape of one or several brokers: every sample, by metric name, then by its label set (as written),
/// summed over brokers.
#[derive(Debug, Default, Clone)]
struct Scrape {
    samples: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Scrape {
    fn add_text(&mut self, text: &str) {
        for line in text.lines().filter(|line| !line.is_empty() && !line.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.parse::<f64>() else { continue };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            *self.samples.entry(name.to_string()).or_default().entry(labels.to_string()).or_default() += value;
        }
    }

    fn series(&self, name: &str) -> impl Iterator<Item = (&str, f64)> {
        self.samples.get(name).into_iter().flatten().map(|(labels, &value)| (labels.as_str(), value))
    }

    fn total(&self, name: &str) -> f64 {
        self.series(name).map(|(_, value)| value).sum()
    }

    /// Samples of `name` summed by the value of `label`.
    fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut sums = BTreeMap::new();
        for (labels, value) in self.series(name) {
            if let Some(key) = label_value(labels, label) {
                *sums.entry(key.to_string()).or_default() += value;
            }
        }
        sums
    }
}

/// The value of `label` in a label set as the text format writes it (`a="x",b="y"`). Sluice's label values
/// (topics, groups, APIs, error names, numbers) hold no quotes or commas.
fn label_value<'a>(labels: &'a str, label: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| pair.strip_prefix(label)?.strip_prefix("=\"")?.strip_suffix('"'))
}

/// GET /metrics from one admin listener, in the classic text format.
fn fetch(address: &str) -> anyhow::Result<String> {
    let address = address.trim_start_matches("http://").trim_end_matches('/');
    let socket = address
        .to_socket_addrs()
        .with_context(|| format!("resolving {address}"))?
        .next()
        .with_context(|| format!("{address} resolves to nothing"))?;
    let mut stream =
        TcpStream::connect_timeout(&socket, TIMEOUT).with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.take(MAX_BODY_BYTES).read_to_end(&mut answer).with_context(|| format!("reading from {address}"))?;
    let answer = String::from_utf8(answer).with_context(|| format!("{address} answered with invalid UTF-8"))?;
    let Some((head, body)) = answer.split_once("\r\n\r\n") else { bail!("{address}: no HTTP answer") };
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{address}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}

fn scrape(addresses: &[String]) -> anyhow::Result<Scrape> {
    let mut scrape = Scrape::default();
    for address in addresses {
        scrape.add_text(&fetch(address)?);
    }
    Ok(scrape)
}

/// Per-second growth of each series of `name` summed by `label`, between two scrapes.
fn rates(before: &Scrape, now: &Scrape, name: &str, label: &str, seconds: f64) -> BTreeMap<String, f64> {
    let old = before.by_label(name, label);
    now.by_label(name, label)
        .into_iter()
        .map(|(key, value)| {
            let grown = (value - old.get(&key).copied().unwrap_or(0.0)).max(0.0);
            (key, grown / seconds)
        })
        .collect()
}

/// The `quantile` of a histogram given by cumulative (upper bound, count) buckets, interpolated linearly within
/// its bucket as Prometheus' `histogram_quantile` does; `None` without observations.
fn quantile(buckets: &[(f64, f64)], quantile: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = quantile * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = count - lower.1;
            let fraction = if within > 0.0 { (rank - lower.1) / within } else { 1.0 };
            return Some(lower.0 + (bound - lower.0) * fraction);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

/// Each API's latency buckets grown between two scrapes (or since start when none grew), cumulative.
fn latency_buckets(before: &Scrape, now: &Scrape) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut by_api: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let old: BTreeMap<&str, f64> = before.series("sluice_request_latency_seconds_bucket").collect();
    for (labels, value) in now.series("sluice_request_latency_seconds_bucket") {
        let (Some(api), Some(le)) = (label_value(labels, "api"), label_value(labels, "le")) else { continue };
        let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::INFINITY) };
        let grown = value - old.get(labels).copied().unwrap_or(0.0);
        by_api.entry(api.to_string()).or_default().push((bound, grown.max(0.0)));
    }
    for buckets in by_api.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    by_api
}

fn top<'a>(values: impl IntoIterator<Item = (&'a String, &'a f64)>) -> Vec<(&'a String, f64)> {
    let mut rows: Vec<(&String, f64)> = values.into_iter().map(|(key, &value)| (key, value)).collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    rows.truncate(ROWS);
    rows
}

fn millis(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_string(), |s| format!("{:.2}", s * 1000.0))
}

/// One frame of the view.
fn frame(addresses: &[String], before: &Scrape, now: &Scrape, seconds: f64) -> String {
    let mut out = String::new();
    let brokers = addresses.join(", ");
    out.push_str(&format!("sluice top: {brokers}, over {seconds:.1} s\n\n"));

    out.push_str(&format!(
        "replication: under-replicated {}  under-min-ISR {}  offline (no leader) {}  offline logs {}  \
         fenced brokers {}\n\n",
        now.total("sluice_under_replicated_partitions"),
        now.total("sluice_under_min_isr_partitions"),
        now.total("sluice_offline_partitions"),
        now.total("sluice_offline_log_partitions"),
        now.total("sluice_fenced_brokers"),
    ));

    let bytes_in = rates(before, now, "sluice_bytes_in_total", "topic", seconds);
    let bytes_out = rates(before, now, "sluice_bytes_out_total", "topic", seconds);
    let records_in = rates(before, now, "sluice_records_in_total", "topic", seconds);
    out.push_str(&format!("{:<40} {:>14} {:>14} {:>14}\n", "TOPIC", "BYTES IN/S", "RECORDS IN/S", "BYTES OUT/S"));
    for (topic, rate) in top(&bytes_in) {
        out.push_str(&format!(
            "{:<40} {:>14.0} {:>14.0} {:>14.0}\n",
            topic,
            rate,
            records_in.get(topic).copied().unwrap_or(0.0),
            bytes_out.get(topic).copied().unwrap_or(0.0)
        ));
    }

    let requests = rates(before, now, "sluice_requests_total", "api", seconds);
    let errors = rates(before, now, "sluice_request_errors_total", "api", seconds);
    let latency = latency_buckets(before, now);
    let cumulative = latency_buckets(&Scrape::default(), now);
    out.push_str(&format!(
        "\n{:<28} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
        "API", "REQ/S", "ERR/S", "P50 MS", "P99 MS", "P99.9 MS"
    ));
    for (api, rate) in top(&requests) {
        // Percentiles over the interval, or since start when the interval saw none of this API.
        let buckets = latency.get(api).filter(|b| b.last().is_some_and(|last| last.1 > 0.0)).or(cumulative.get(api));
        let buckets = buckets.map(Vec::as_slice).unwrap_or_default();
        out.push_str(&format!(
            "{:<28} {:>10.1} {:>10.1} {:>10} {:>10} {:>10}\n",
            api,
            rate,
            errors.get(api).copied().unwrap_or(0.0),
            millis(quantile(buckets, 0.5)),
            millis(quantile(buckets, 0.99)),
            millis(quantile(buckets, 0.999)),
        ));
    }

    let lag = now.by_label("sluice_consumer_group_lag_records", "group");
    let states: BTreeMap<String, String> = now
        .series("sluice_consumer_group_state")
        .filter(|&(_, value)| value > 0.0)
        .filter_map(|(labels, _)| {
            Some((label_value(labels, "group")?.to_string(), label_value(labels, "state")?.to_string()))
        })
        .collect();
    out.push_str(&format!("\n{:<40} {:>14} {:>20}\n", "GROUP", "LAG (RECORDS)", "STATE"));
    for (group, records) in top(&lag) {
        out.push_str(&format!(
            "{:<40} {:>14.0} {:>20}\n",
            group,
            records,
            states.get(group).map_or("-", String::as_str)
        ));
    }
    out
}

pub fn run(args: TopArgs) -> anyhow::Result<()> {
    if !(args.interval > 0.0 && args.interval <= 3600.0) {
        bail!("--interval must be between 0 and 3600 seconds");
    }
    let interval = Duration::from_secs_f64(args.interval);
    let frames = if args.once { Some(1) } else { args.frames };
    let mut before = scrape(&args.admin)?;
    let mut taken = Instant::now();
    let mut drawn = 0u64;
    while frames.is_none_or(|frames| drawn < frames) {
        std::thread::sleep(interval.saturating_sub(taken.elapsed()));
        let now = scrape(&args.admin)?;
        let seconds = taken.elapsed().as_secs_f64();
        taken = Instant::now();
        let view = frame(&args.admin, &before, &now, seconds);
        let mut stdout = std::io::stdout().lock();
        if !args.once {
            // Clear the screen and go home, as top does.
            stdout.write_all(b"\x1b[2J\x1b[H")?;
        }
        stdout.write_all(view.as_bytes())?;
        stdout.flush()?;
        before = now;
        drawn += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_the_bucket_as_prometheus_does() {
        let buckets = [(0.001, 50.0), (0.01, 90.0), (0.1, 100.0), (f64::INFINITY, 100.0)];
        assert_eq!(quantile(&buckets, 0.5), Some(0.001));
        let p70 = quantile(&buckets, 0.7).unwrap_or_default();
        assert!((p70 - 0.0055).abs() < 1e-9, "{p70}");
        assert_eq!(quantile(&[(0.1, 0.0), (f64::INFINITY, 0.0)], 0.5), None);
        assert_eq!(quantile(&[(0.1, 0.0), (f64::INFINITY, 3.0)], 0.5), Some(0.1));
    }

    #[test]
    fn samples_sum_over_brokers_and_rates_come_from_two_scrapes() {
        let mut before = Scrape::default();
        before.add_text("# TYPE x counter\nsluice_bytes_in_total{topic=\"a\"} 100\n");
        let mut now = Scrape::default();
        now.add_text("sluice_bytes_in_total{topic=\"a\"} 300\nsluice_bytes_in_total{topic=\"b\"} 50\n");
        now.add_text("sluice_bytes_in_total{topic=\"a\"} 100\n");
        let rates = rates(&before, &now, "sluice_bytes_in_total", "topic", 2.0);
        assert_eq!(rates["a"], 150.0);
        assert_eq!(rates["b"], 25.0);
        assert_eq!(label_value("group=\"g\",topic=\"t\"", "topic"), Some("t"));
        assert_eq!(label_value("group=\"g\",topic=\"t\"", "top"), None);
    }
}
