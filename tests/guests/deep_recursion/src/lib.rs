//! Hostile guest: `process` recurses without bound on scalars only, so every frame is on
//! the wasm call stack (which wasmtime runs on a host fiber), not in linear memory, until
//! that stack runs out. The host must report a trap, discard the instance and keep working.

wit_bindgen::generate!({ path: "../../../wit", world: "formatter" });

use std::hint::black_box;

struct DeepRecursion;

/// One frame of the descent; `black_box` keeps the compiler from turning it into a loop.
#[inline(never)]
fn descend(depth: u64, a: u64, b: u64, c: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return a ^ b ^ c;
    }
    let below = descend(depth + 1, b.rotate_left(3), c ^ depth, a.wrapping_add(1));
    black_box(below.wrapping_mul(a | 1) ^ b ^ c)
}

impl Guest for DeepRecursion {
    fn init(_config: String) -> Result<PluginInfo, String> {
        Ok(PluginInfo {
            name: "deep-recursion".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        _batch: BatchInfo,
        group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        let n = group.len() as u64;
        let depth = descend(0, n, n << 1, n << 2);
        Err(format!("the recursion ended at {depth}, which it never should"))
    }
}

export!(DeepRecursion);
