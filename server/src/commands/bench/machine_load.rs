//! How busy the whole machine was during a phase (`/proc/stat`): a phase whose calls queue
//! while a core sits idle is limited by a serialisation point, not by CPU.

/// The machine's CPU counters at one moment, in clock ticks summed over every core.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuCounters {
    busy: u64,
    total: u64,
}

impl CpuCounters {
    /// Now, if the system says.
    pub fn now() -> Option<CpuCounters> {
        counters_of(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Cores busy on average from `self` until `later` (0 to the number of cores).
    pub fn busy_cores_until(self, later: CpuCounters, cores: usize) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        let busy = later.busy.checked_sub(self.busy)?;
        (total > 0).then(|| busy as f64 / total as f64 * cores as f64)
    }
}

/// The aggregate `cpu` line: user nice system idle iowait irq softirq steal …; idle and
/// iowait are the idle time, guest time is already inside user.
fn counters_of(stat: &str) -> Option<CpuCounters> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if fields.len() < 5 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    let idle = fields[3] + fields[4];
    Some(CpuCounters {
        busy: total - idle,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aggregate_line_gives_busy_and_total() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n";
        assert_eq!(
            counters_of(stat),
            Some(CpuCounters {
                busy: 150,
                total: 1000
            })
        );
        assert_eq!(counters_of("intr 1 2 3\n"), None);
        assert_eq!(counters_of("cpu  1 x 3 4 5\n"), None);
    }

    #[test]
    fn busy_cores_scale_by_the_core_count() {
        let before = CpuCounters {
            busy: 100,
            total: 1000,
        };
        let after = CpuCounters {
            busy: 850,
            total: 2000,
        };
        assert_eq!(before.busy_cores_until(after, 2), Some(1.5));
        assert_eq!(before.busy_cores_until(before, 2), None);
        assert_eq!(after.busy_cores_until(before, 2), None);
    }

    #[test]
    fn this_machine_can_be_read() {
        assert!(CpuCounters::now().is_some_and(|c| c.total >= c.busy));
    }
}
