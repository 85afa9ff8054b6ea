//! Hostile guest: a core WebAssembly module, not a component (what a wasip1 toolchain or a
//! forgotten `wasm-tools component new` produces). The host must refuse it at load time.

/// An export so the module is not empty.
#[unsafe(no_mangle)]
pub extern "C" fn process(len: i32) -> i32 {
    len.wrapping_mul(2)
}
