//! [`Meter`]: wall time and CPU time of this process over a timed region.

use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use serde::{Deserialize, Serialize};

/// User and system CPU time this process (every thread of it) has used so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTime {
    user: Duration,
    system: Duration,
}

impl CpuTime {
    pub(crate) fn now() -> Self {
        // getrusage(RUSAGE_SELF) cannot fail with a valid `who`; zero would only make a
        // figure look too good, so say so loudly instead.
        let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage(RUSAGE_SELF) works");
        let micros = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
        };
        Self {
            user: micros(usage.user_time()),
            system: micros(usage.system_time()),
        }
    }
}

/// What a client measured of itself: the timed region (first publish to last completion)
/// and, for reference, the whole process (runtime start and connection included).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Measured {
    /// Messages completed in the timed region.
    pub(crate) messages: u64,
    /// Wall time of the timed region.
    pub(crate) elapsed_ns: u64,
    /// User CPU time of the timed region, every thread of the process.
    pub(crate) user_ns: u64,
    /// System CPU time of the timed region.
    pub(crate) sys_ns: u64,
    /// User CPU time of the whole process until the end of the timed region.
    pub(crate) process_user_ns: u64,
    /// System CPU time of the whole process until the end of the timed region.
    pub(crate) process_sys_ns: u64,
}

impl Measured {
    /// Messages per second.
    pub(crate) fn rate(&self) -> f64 {
        self.messages as f64 / (self.elapsed_ns as f64 / 1e9)
    }

    /// CPU time (user + system) per message, in microseconds.
    pub(crate) fn cpu_us_per_message(&self) -> f64 {
        (self.user_ns + self.sys_ns) as f64 / 1e3 / self.messages as f64
    }
}

/// A timed region, started when created.
#[derive(Debug)]
pub(crate) struct Meter {
    start: Instant,
    cpu: CpuTime,
}

impl Meter {
    pub(crate) fn start() -> Self {
        let cpu = CpuTime::now();
        Self {
            start: Instant::now(),
            cpu,
        }
    }

    /// Ends the region, in which `messages` completed.
    pub(crate) fn stop(self, messages: u64) -> Measured {
        let elapsed = self.start.elapsed();
        let cpu = CpuTime::now();
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Measured {
            messages,
            elapsed_ns: ns(elapsed),
            user_ns: ns(cpu.user.saturating_sub(self.cpu.user)),
            sys_ns: ns(cpu.system.saturating_sub(self.cpu.system)),
            process_user_ns: ns(cpu.user),
            process_sys_ns: ns(cpu.system),
        }
    }
}
