//! Giving freed heap memory back to the kernel while `shipper run` runs.
//!
//! glibc's malloc keeps memory freed in the middle of its heaps resident until the chunks
//! around it are freed too; it only trims the top of a heap by itself. With hundreds of
//! shards, each pulling and sending buffers of a few hundred KiB at its own pace, the heaps
//! end up riddled with such holes: behind a slow sink at 256 shards the resident memory
//! kept climbing by 90 MiB over a minute while the data held stayed under the budget
//! (docs/architecture.md §6 "Bounded memory"). `malloc_trim` returns the whole free pages
//! of every arena (`madvise(MADV_DONTNEED)`); run every few seconds it costs a walk of
//! the free lists, nothing per allocation (a lower mmap threshold, the other fix, made
//! every large buffer a fresh mapping and cost 12–28 % of the throughput per CPU-second).

use std::time::Duration;

/// How often the heaps are trimmed.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(2);

/// Trims the heaps every [`TRIM_INTERVAL`] until `shutdown`.
pub async fn trim_periodically(shutdown: tokio_util::sync::CancellationToken) {
    let mut ticks = tokio::time::interval(TRIM_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            // Off the runtime's workers: the walk takes every arena's lock for a moment.
            _ = ticks.tick() => {
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        }
    }
}

/// Gives the free pages of every heap back to the kernel (glibc only: other C libraries and
/// allocators return memory their own way, and this does nothing there).
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases memory malloc already considers free; it takes
    // the arenas' locks itself and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
