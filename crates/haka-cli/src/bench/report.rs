//! The summary of a `haka bench` run: a table for people, or one JSON object.

use std::{fmt::Write as _, time::Duration};

use serde::Serialize;

use super::stats::Percentiles;

/// What a run measured, as printed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    /// The QoS of every message.
    pub(crate) qos: u8,
    /// How many messages were published.
    pub(crate) count: u64,
    /// Payload bytes per message.
    pub(crate) size: u64,
    /// Publishing connections.
    pub(crate) connections: u64,
    /// `memory`, or the store's directory.
    pub(crate) store: String,
    /// Whether the directory store waited for the disk.
    pub(crate) fsync: bool,
    /// The publishers' side.
    pub(crate) publish: PublishSummary,
    /// The subscriber's side.
    pub(crate) receive: ReceiveSummary,
}

/// Publishing: from the first publish to the last completion (PUBACK for QoS 1, PUBCOMP for
/// QoS 2, written for QoS 0).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PublishSummary {
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) seconds: f64,
    pub(crate) messages_per_second: f64,
    pub(crate) bytes_per_second: f64,
    /// From the publish call to its completion.
    pub(crate) latency_ms: Option<LatencyMs>,
}

/// Receiving: from the first publish to the last message the subscriber got.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReceiveSummary {
    pub(crate) received: u64,
    pub(crate) duplicates: u64,
    pub(crate) missing: u64,
    pub(crate) seconds: f64,
    pub(crate) messages_per_second: f64,
    pub(crate) bytes_per_second: f64,
    /// From the publish call to the subscriber's receipt.
    pub(crate) latency_ms: Option<LatencyMs>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct LatencyMs {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl From<Percentiles> for LatencyMs {
    fn from(p: Percentiles) -> Self {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        Self {
            p50: ms(p.p50),
            p90: ms(p.p90),
            p99: ms(p.p99),
            max: ms(p.max),
        }
    }
}

/// `count` per second over `elapsed`; 0 for an empty span.
pub(crate) fn rate(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

impl Summary {
    /// One JSON object, on one line.
    pub(crate) fn to_json(&self) -> String {
        // Strings, numbers (finite: rates of a non-empty span) and booleans only.
        serde_json::to_string(self).expect("the summary serializes")
    }

    /// A table with aligned columns.
    pub(crate) fn to_table(&self) -> String {
        let mut out = String::new();
        let connections = match self.connections {
            1 => "1 connection".to_owned(),
            n => format!("{n} connections"),
        };
        let store = match (self.store.as_str(), self.fsync) {
            ("memory", _) => "memory store".to_owned(),
            (dir, true) => format!("directory store in {dir} (fsync)"),
            (dir, false) => format!("directory store in {dir}"),
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{} messages of {} bytes at QoS {}, {connections}, {store}\n",
            self.count, self.size, self.qos
        );
        let _ = writeln!(
            out,
            "{:<14}{:>10}{:>10}{:>12}{:>10}",
            "", "messages", "seconds", "msg/s", "MB/s"
        );
        let mut throughput = |label: &str, n: u64, seconds: f64, per_second: f64, bytes: f64| {
            let _ = writeln!(
                out,
                "{label:<14}{n:>10}{seconds:>10.3}{per_second:>12.1}{:>10.2}",
                bytes / 1e6
            );
        };
        let p = &self.publish;
        throughput(
            "published",
            p.completed,
            p.seconds,
            p.messages_per_second,
            p.bytes_per_second,
        );
        let r = &self.receive;
        throughput(
            "received",
            r.received,
            r.seconds,
            r.messages_per_second,
            r.bytes_per_second,
        );
        let _ = writeln!(
            out,
            "\n{:<14}{:>10}{:>10}{:>12}{:>10}",
            "latency (ms)", "p50", "p90", "p99", "max"
        );
        for (label, latency) in [("publish", p.latency_ms), ("end to end", r.latency_ms)] {
            match latency {
                Some(l) => {
                    let _ = writeln!(
                        out,
                        "{label:<14}{:>10.3}{:>10.3}{:>12.3}{:>10.3}",
                        l.p50, l.p90, l.p99, l.max
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "{label:<14}{:>10}{:>10}{:>12}{:>10}",
                        "-", "-", "-", "-"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "\nfailed publishes: {}, duplicates received: {}, missing: {}",
            p.failed, r.duplicates, r.missing
        );
        if let Some(why) = self.why_missing() {
            let _ = writeln!(out, "{why}");
        }
        out
    }

    /// Why messages went missing, when the run itself can tell. At QoS 1 and 2 a completed
    /// publish means the broker took responsibility for the message, so what the subscriber
    /// never got was dropped on the broker's side, most often by a limit on what it queues
    /// for a subscriber that falls behind; at QoS 0 nothing is acknowledged and any hop may
    /// drop.
    fn why_missing(&self) -> Option<&'static str> {
        if self.receive.missing == 0 {
            return None;
        }
        Some(if self.qos == 0 {
            "note: QoS 0 messages may be dropped by the client, the broker or the network; \
             use QoS 1 or 2 to count losses"
        } else if self.publish.failed == 0 && self.publish.completed == self.count {
            "note: the broker acknowledged every message, so it dropped the missing ones, \
             most likely at its queue limit for a slow subscriber (mosquitto: \
             max_queued_messages, 1000 by default)"
        } else {
            "note: messages whose publish failed are counted as missing"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        let latency = Some(LatencyMs {
            p50: 0.5,
            p90: 0.9,
            p99: 1.25,
            max: 3.0,
        });
        Summary {
            qos: 1,
            count: 2000,
            size: 64,
            connections: 2,
            store: "memory".to_owned(),
            fsync: false,
            publish: PublishSummary {
                completed: 2000,
                failed: 0,
                seconds: 0.5,
                messages_per_second: 4000.0,
                bytes_per_second: 256_000.0,
                latency_ms: latency,
            },
            receive: ReceiveSummary {
                received: 2000,
                duplicates: 0,
                missing: 0,
                seconds: 0.5,
                messages_per_second: 4000.0,
                bytes_per_second: 256_000.0,
                latency_ms: None,
            },
        }
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let table = summary().to_table();
        assert!(
            table.starts_with("2000 messages of 64 bytes at QoS 1, 2 connections, memory store")
        );
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("published") || l.starts_with("received"))
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].len(), rows[1].len());
        assert!(rows[0].contains("4000.0"), "{table}");
        assert!(table.contains("end to end             -"), "{table}");
    }

    #[test]
    fn missing_messages_come_with_their_likely_cause() {
        let mut complete = summary();
        assert!(!complete.to_table().contains("note:"));

        complete.receive.missing = 30;
        let table = complete.to_table();
        assert!(table.contains("missing: 30"), "{table}");
        assert!(table.contains("max_queued_messages"), "{table}");

        let mut failed = complete.clone();
        failed.publish.failed = 30;
        failed.publish.completed = 1970;
        assert!(failed.to_table().contains("publish failed"));

        let mut qos0 = complete;
        qos0.qos = 0;
        assert!(qos0.to_table().contains("QoS 0 messages may be dropped"));
    }

    #[test]
    fn json_has_every_field() {
        let value: serde_json::Value =
            serde_json::from_str(&summary().to_json()).expect("valid JSON");
        assert_eq!(value["publish"]["messages_per_second"], 4000.0);
        assert_eq!(value["publish"]["latency_ms"]["p99"], 1.25);
        assert!(value["receive"]["latency_ms"].is_null());
        assert_eq!(value["qos"], 1);
    }

    #[test]
    fn rates_of_an_empty_span_are_zero() {
        assert_eq!(rate(10, Duration::ZERO), 0.0);
        assert_eq!(rate(10, Duration::from_millis(500)), 20.0);
    }
}
