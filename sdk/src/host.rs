//! Calls into shipper: leveled logging and counters (the WIT `host` interface).
//!
//! In a native build (`cargo test` of a plugin crate) there is no host: [`log`] writes to
//! stderr, [`log_enabled`] says yes and [`counter_add`] does nothing, so formatting code that
//! logs can still be unit-tested.

#[cfg(target_arch = "wasm32")]
use crate::bindings::shipper::plugin::host as wit;

/// Log levels for [`log`].
pub use crate::bindings::shipper::plugin::host::Level;

/// Writes a line to shipper's log, tagged with the plugin's name. The host rate-limits and
/// truncates plugin log lines; never log per record on a hot path (see [`log_enabled`]).
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    wit::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[plugin {level:?}] {message}");
}

/// Whether [`log`] at `level` would be written: check it before building an expensive
/// message.
pub fn log_enabled(level: Level) -> bool {
    #[cfg(target_arch = "wasm32")]
    return wit::log_enabled(level);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = level;
        true
    }
}

/// Adds `delta` to the plugin counter `name`, exported by shipper as
/// `shipper_plugin_events_total{plugin=…,name=…}`. The host caps the number of names.
pub fn counter_add(name: &str, delta: u64) {
    #[cfg(target_arch = "wasm32")]
    wit::counter_add(name, delta);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (name, delta);
}
