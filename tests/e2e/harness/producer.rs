//! Steady load for tests that change something while logs keep arriving: a thread that puts
//! logs in rounds, staying at most a bounded backlog ahead of what the receiver has.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::dataset::Dataset;
use super::sls::SlsEnv;

/// Puts logs continuously on its own thread until dropped or [`Producer::finish`]ed.
pub struct Producer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Dataset>>,
}

impl Producer {
    /// Puts `chunk` logs a round while `delivered()` is within `backlog` logs of what was
    /// put (pacing only, not synchronisation).
    pub fn start(
        env: &SlsEnv,
        mut ds: Dataset,
        chunk: u64,
        backlog: u64,
        delivered: impl Fn() -> u64 + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let loader = env.loader();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                loader.load(&mut ds, chunk);
                while !flag.load(Ordering::SeqCst) && delivered() + backlog < ds.len() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            ds
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops after the current round; returns everything that was loaded.
    pub fn finish(mut self) -> Dataset {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("producer thread")
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Replaces a file atomically (write aside, rename), as a deployment would.
pub fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write the new file aside");
    std::fs::rename(&tmp, path).expect("rename the new file into place");
}
