//! The tables: medians over repetitions, and ratios to rumqttc taken within each repetition.

use std::fmt::Write;

use serde::Serialize;

use crate::{client::Latency, cpu::Measured};

/// The peer every ratio is taken against.
pub(crate) const REFERENCE: &str = "rumqttc";

/// One run of one client in one repetition of a throughput workload.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ThroughputRun {
    pub(crate) rep: usize,
    pub(crate) client: String,
    pub(crate) result: Result<Measured, String>,
}

/// One run of one client in one repetition of the latency workload.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LatencyRun {
    pub(crate) rep: usize,
    pub(crate) client: String,
    pub(crate) result: Result<Latency, String>,
}

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// A run of one client in one repetition.
trait Run {
    fn rep(&self) -> usize;
    fn client(&self) -> &str;
}

impl Run for ThroughputRun {
    fn rep(&self) -> usize {
        self.rep
    }
    fn client(&self) -> &str {
        &self.client
    }
}

impl Run for LatencyRun {
    fn rep(&self) -> usize {
        self.rep
    }
    fn client(&self) -> &str {
        &self.client
    }
}

/// Pairs `client`'s and `other`'s values of the same repetition; the median of their ratios.
fn median_ratio<R: Run>(
    runs: &[R],
    client: &str,
    other: &str,
    value: impl Fn(&R) -> Option<f64>,
) -> Option<f64> {
    let ratios = runs
        .iter()
        .filter(|r| r.client() == client)
        .filter_map(|r| {
            let mine = value(r)?;
            let theirs = runs
                .iter()
                .find(|o| o.rep() == r.rep() && o.client() == other)
                .and_then(&value)?;
            Some(mine / theirs)
        })
        .collect();
    median(ratios)
}

/// The summary of one client in one throughput workload.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ThroughputSummary {
    pub(crate) client: String,
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    pub(crate) rate: Option<f64>,
    pub(crate) cpu_us: Option<f64>,
    /// Median over repetitions of this client's rate over rumqttc's.
    pub(crate) rate_vs_reference: Option<f64>,
    /// Median over repetitions of this client's CPU per message over rumqttc's.
    pub(crate) cpu_vs_reference: Option<f64>,
}

pub(crate) fn summarize_throughput(
    clients: &[String],
    runs: &[ThroughputRun],
) -> Vec<ThroughputSummary> {
    clients
        .iter()
        .map(|client| {
            let mine: Vec<&Measured> = runs
                .iter()
                .filter(|r| &r.client == client)
                .filter_map(|r| r.result.as_ref().ok())
                .collect();
            let failed = runs
                .iter()
                .filter(|r| &r.client == client && r.result.is_err())
                .count();
            ThroughputSummary {
                client: client.clone(),
                ok: mine.len(),
                failed,
                rate: median(mine.iter().map(|m| m.rate()).collect()),
                cpu_us: median(mine.iter().map(|m| m.cpu_us_per_message()).collect()),
                rate_vs_reference: median_ratio(runs, client, REFERENCE, |r| {
                    r.result.as_ref().ok().map(Measured::rate)
                }),
                cpu_vs_reference: median_ratio(runs, client, REFERENCE, |r| {
                    r.result.as_ref().ok().map(Measured::cpu_us_per_message)
                }),
            }
        })
        .collect()
}

/// The median over repetitions of `client`'s rate over `other`'s in the same repetition.
pub(crate) fn rate_ratio(runs: &[ThroughputRun], client: &str, other: &str) -> Option<f64> {
    median_ratio(runs, client, other, |r| {
        r.result.as_ref().ok().map(Measured::rate)
    })
}

/// The summary of one client in the latency workload (medians of each percentile).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LatencySummary {
    pub(crate) client: String,
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    pub(crate) lost: u64,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p90_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    /// Median over repetitions of this client's p50 over rumqttc's.
    pub(crate) p50_vs_reference: Option<f64>,
}

pub(crate) fn summarize_latency(clients: &[String], runs: &[LatencyRun]) -> Vec<LatencySummary> {
    clients
        .iter()
        .map(|client| {
            let mine: Vec<&Latency> = runs
                .iter()
                .filter(|r| &r.client == client)
                .filter_map(|r| r.result.as_ref().ok())
                .collect();
            let us =
                |f: fn(&Latency) -> u64| median(mine.iter().map(|l| f(l) as f64 / 1e3).collect());
            LatencySummary {
                client: client.clone(),
                ok: mine.len(),
                failed: runs
                    .iter()
                    .filter(|r| &r.client == client && r.result.is_err())
                    .count(),
                lost: mine.iter().map(|l| l.lost).sum(),
                p50_us: us(|l| l.p50_ns),
                p90_us: us(|l| l.p90_ns),
                p99_us: us(|l| l.p99_ns),
                p50_vs_reference: median_ratio(runs, client, REFERENCE, |r| {
                    r.result.as_ref().ok().map(|l| l.p50_ns as f64)
                }),
            }
        })
        .collect()
}

fn rate(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 1e6 => format!("{:.2} M", v / 1e6),
        Some(v) if v >= 1e3 => format!("{:.0} k", v / 1e3),
        Some(v) => format!("{v:.0}"),
        None => "–".to_owned(),
    }
}

fn fixed(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

fn runs(ok: usize, failed: usize) -> String {
    if failed == 0 {
        ok.to_string()
    } else {
        format!("{ok} ({failed} failed)")
    }
}

/// A markdown table of one throughput workload.
pub(crate) fn throughput_table(title: &str, rows: &[ThroughputSummary]) -> String {
    let mut out = format!(
        "#### {title}\n\n| client | msg/s | CPU µs/msg | msg/s ÷ rumqttc | CPU ÷ rumqttc | runs |\n|---|---:|---:|---:|---:|---:|\n"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.client,
            rate(row.rate),
            fixed(row.cpu_us, 2),
            fixed(row.rate_vs_reference, 2),
            fixed(row.cpu_vs_reference, 2),
            runs(row.ok, row.failed),
        );
    }
    out
}

/// A markdown table of the latency workload.
pub(crate) fn latency_table(title: &str, rows: &[LatencySummary]) -> String {
    let mut out = format!(
        "#### {title}\n\n| client | p50 µs | p90 µs | p99 µs | p50 ÷ rumqttc | lost | runs |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.client,
            fixed(row.p50_us, 0),
            fixed(row.p90_us, 0),
            fixed(row.p99_us, 0),
            fixed(row.p50_vs_reference, 2),
            row.lost,
            runs(row.ok, row.failed),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rep: usize, client: &str, messages: u64, elapsed_ns: u64) -> ThroughputRun {
        ThroughputRun {
            rep,
            client: client.to_owned(),
            result: Ok(Measured {
                messages,
                elapsed_ns,
                user_ns: 1000 * messages,
                sys_ns: 0,
                process_user_ns: 0,
                process_sys_ns: 0,
            }),
        }
    }

    #[test]
    fn medians_and_ratios_within_a_repetition() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
        // Repetition 0: haka twice as fast; repetition 1: three times; repetition 2: rumqttc
        // failed, so it does not count.
        let mut runs = vec![
            run(0, "haka", 100, 1_000_000),
            run(0, "rumqttc", 100, 2_000_000),
            run(1, "haka", 100, 1_000_000),
            run(1, "rumqttc", 100, 3_000_000),
            run(2, "haka", 100, 1_000_000),
        ];
        runs.push(ThroughputRun {
            rep: 2,
            client: "rumqttc".into(),
            result: Err("refused".into()),
        });
        assert_eq!(rate_ratio(&runs, "haka", "rumqttc"), Some(2.5));
        let rows = summarize_throughput(&["haka".into(), "rumqttc".into()], &runs);
        assert_eq!(rows[0].ok, 3);
        assert_eq!(rows[1].failed, 1);
        assert_eq!(rows[0].rate, Some(100_000.0));
        assert_eq!(rows[0].cpu_us, Some(1.0));
        assert!(throughput_table("t", &rows).contains("| haka | 100 k | 1.00 | 2.50 | 1.00 | 3 |"));
    }
}
