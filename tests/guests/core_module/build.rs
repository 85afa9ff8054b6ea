//! Links this guest as a plain core module: `--skip-wit-component` stops wasm32-wasip2's
//! linker (wasm-component-ld) from wrapping it into a component.

fn main() {
    println!("cargo:rustc-link-arg-cdylib=--skip-wit-component");
}
