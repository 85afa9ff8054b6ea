//! The SDK-produced test vectors under `tests/fixtures/sls/`, for unit tests.

/// The bytes of fixture `name`; panics with the path when it cannot be read.
pub(crate) fn read(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/sls/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}
