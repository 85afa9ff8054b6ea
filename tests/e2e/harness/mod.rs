//! Guards for the real processes e2e tests start; each module hands out one guard value whose
//! `Drop` kills and reaps what it started (style.md §3.5).
//! - [`emulator`]: `shipper emulator` on 127.0.0.1:0, address read from its first stdout line.

pub mod emulator;
