//! Plugin micro-benchmark (being written: µs per log per plugin, bytes-in vs structured).

fn main() {}
