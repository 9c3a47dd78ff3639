//! Latency percentiles from the samples of a run, by nearest rank over the sorted samples.

use std::time::Duration;

/// The percentiles `haka bench` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Percentiles {
    pub(crate) p50: Duration,
    pub(crate) p90: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

impl Percentiles {
    /// The percentiles of `samples` (nanoseconds); `None` without samples.
    pub(crate) fn of(mut samples: Vec<u64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |percent: u64| {
            // Nearest rank: the smallest sample with at least `percent`% of the samples at or
            // below it.
            let len = samples.len() as u64;
            let rank = (percent * len).div_ceil(100).max(1);
            let index = usize::try_from(rank - 1).unwrap_or(usize::MAX);
            Duration::from_nanos(samples[index.min(samples.len() - 1)])
        };
        Some(Self {
            p50: at(50),
            p90: at(90),
            p99: at(99),
            max: at(100),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        let p = Percentiles::of(samples).expect("samples");
        assert_eq!(p.p50, Duration::from_nanos(50));
        assert_eq!(p.p90, Duration::from_nanos(90));
        assert_eq!(p.p99, Duration::from_nanos(99));
        assert_eq!(p.max, Duration::from_nanos(100));
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let p = Percentiles::of(vec![7]).expect("a sample");
        assert_eq!(
            (p.p50, p.max),
            (Duration::from_nanos(7), Duration::from_nanos(7))
        );
        assert_eq!(Percentiles::of(Vec::new()), None);
    }
}
