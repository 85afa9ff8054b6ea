//! shipper-runtime against real components: the test guests (tests/guests) and the plugins
//! (plugins/*), all compiled from source by `shipper-test-artifacts`. One binary, one module
//! per area; every guest must have a test (checked at compile time in `guests`).

mod cache;
mod guests;
mod lang_plugins;
mod plugins;
mod structured;
mod support;
