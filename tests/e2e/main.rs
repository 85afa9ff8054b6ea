//! End-to-end tests: the real `shipper` binary against the emulator and real receivers.
