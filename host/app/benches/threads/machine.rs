//! What the benchmark reads from the kernel: the process's CPU time, each worker's time on
//! and off a CPU, and CPU pinning.

use std::sync::Arc;
use std::time::Duration;

/// The process's user + system CPU time (every thread).
pub(crate) fn process_cpu() -> Duration {
    // SAFETY: a zeroed rusage is valid; getrusage writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// (on-CPU, runnable but waiting for a CPU) of thread `tid` of this process, from its
/// `schedstat`: the wait is the time other work on the machine took from it.
fn schedstat(tid: i32) -> (Duration, Duration) {
    let stat =
        std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap_or_default();
    let mut f = stat
        .split_whitespace()
        .map(|v| Duration::from_nanos(v.parse().unwrap_or(0)));
    (f.next().unwrap_or_default(), f.next().unwrap_or_default())
}

/// Sums [`schedstat`] over `tids`.
pub(crate) fn workers_schedstat(tids: &[i32]) -> (Duration, Duration) {
    tids.iter()
        .map(|&t| schedstat(t))
        .fold((Duration::ZERO, Duration::ZERO), |(r, w), (r1, w1)| {
            (r + r1, w + w1)
        })
}

/// Time the hypervisor ran something else on `cpus` (`steal` of `/proc/stat`): on a VM,
/// other guests' work, which the workers' own clocks count as theirs.
pub(crate) fn steal(cpus: &[usize]) -> Duration {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        t if t > 0 => t as f64,
        _ => 100.0,
    };
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let total: u64 = stat
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let cpu: usize = f.next()?.strip_prefix("cpu")?.parse().ok()?;
            // user nice system idle iowait irq softirq steal
            cpus.contains(&cpu).then(|| f.nth(7)?.parse::<u64>().ok())?
        })
        .sum();
    Duration::from_secs_f64(total as f64 / ticks)
}

/// Restricts the calling thread to `cpu`.
pub(crate) fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity get a
    // pointer to it and its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Pins each worker of `rt` to its own CPU of `cpus` (one per worker): one blocking task
/// per worker, each holding its worker until all have started, so each runs on a different
/// worker; each pins its thread and reports the CPU it then runs on. Returns the workers'
/// thread ids.
pub(crate) fn pin_workers(
    rt: &tokio::runtime::Runtime,
    cpus: &[usize],
) -> anyhow::Result<Vec<i32>> {
    let barrier = Arc::new(std::sync::Barrier::new(cpus.len()));
    let pins: Vec<_> = cpus
        .iter()
        .map(|&cpu| {
            let barrier = barrier.clone();
            rt.spawn(async move {
                let pinned = pin_current_thread(cpu);
                barrier.wait();
                // SAFETY: gettid and sched_getcpu have no preconditions.
                pinned.map(|()| unsafe { (libc::gettid(), libc::sched_getcpu()) })
            })
        })
        .collect();
    let mut seen = Vec::new();
    for pin in pins {
        let (thread, on) = rt.block_on(pin)??;
        seen.push((thread, on));
    }
    let tids: Vec<i32> = seen.iter().map(|s| s.0).collect();
    let distinct: std::collections::HashSet<_> = tids.iter().collect();
    anyhow::ensure!(
        distinct.len() == cpus.len(),
        "two pins landed on one worker"
    );
    for ((_, on), want) in seen.iter().zip(cpus) {
        anyhow::ensure!(
            usize::try_from(*on).ok() == Some(*want),
            "a worker pinned to CPU {want} runs on {on}"
        );
    }
    Ok(tids)
}
