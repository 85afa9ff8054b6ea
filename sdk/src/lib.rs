//! `shipper-sdk`: write shipper formatter plugins in Rust.
//!
//! A plugin is a WebAssembly component (`cargo build --target wasm32-wasip2`) that shipper
//! calls once per SLS log group with the group's protobuf bytes. This crate runs
//! wit-bindgen once over `wit/shipper.wit` (world `formatter`), decodes the bytes in place
//! and calls *your* function once per log:
//!
//! ```
//! use shipper_sdk::{Emit, Group, HecEvent, Log, RecordError};
//!
//! fn format(group: &Group, log: &Log) -> Result<Vec<Emit>, RecordError> {
//!     let msg = log.get("message").ok_or_else(|| RecordError::invalid_input("no `message`"))?;
//!     let event = HecEvent::text(msg.to_string())
//!         .with_time(log.timestamp())
//!         .with_source(group.source());
//!     Ok(vec![Emit::hec(event)])
//! }
//!
//! shipper_sdk::export!(format);
//! # fn main() {}
//! ```
//!
//! A plugin with config implements [`Plugin`] (an `init` that reads [`Config`] and a
//! `format` method) and exports it with `shipper_sdk::export!(plugin = MyPlugin)`.
//!
//! Where this sits: SLS → host (pull, lz4, split into `LogGroup` byte slices) →
//! **plugin** (this SDK: decode, your `format`, result list) → host (render HEC envelopes /
//! syslog lines, batch, send, checkpoint). See `README.md` for a step-by-step guide.
//!
//! Layout:
//! - [`decode`]: the zero-copy `LogGroup` walker; [`Group`] and [`Log`] borrow from the input.
//! - [`flat`]: the official Python SDK's flattened dict view of a log (what the seed scripts
//!   format), zero-copy.
//! - [`emit`]: builders for [`Emit`], [`HecEvent`], [`SyslogMessage`], [`RecordError`].
//! - [`json`]: fast JSON writer (compact or Python `json.dumps` style), validator, a
//!   Python-compatible re-serialiser, a small ordered tree.
//! - [`cef`], [`leef`]: ArcSight CEF and QRadar LEEF lines with correct escaping.
//! - [`syslog`]: facility and severity names ↔ numbers.
//! - [`time`]: SLS time → [`Timestamp`], RFC 3339, LEEF `devTime`, epoch milliseconds.
//! - [`config`]: the plugin's JSON config, read key by key with errors naming the key.
//! - [`mapping`]: config-driven field references and output templates (syslog or HEC)
//!   shared by mapping plugins.
//! - [`host`]: logging and counters through the host.
//! - [`testing`]: run a plugin natively on flattened JSONL input, dump emits.
//!
//! Performance notes: nothing is copied out of the input bytes on the way in (one UTF-8
//! check per string); the per-call scratch vectors are allocated once per log group, not per
//! log. A plugin should write each event into one pre-sized `String`
//! ([`Log::encoded_len`] is a good first guess).
//!
//! A panic in a plugin traps the component: the host discards the instance and fails the
//! batch. Return a [`RecordError`] for a bad log instead.
#![deny(missing_docs)]

// The generated code refers to this crate as `shipper_sdk`, inside and outside it.
extern crate self as shipper_sdk;

#[doc(hidden)]
pub mod bindings {
    //! The raw wit-bindgen output (world `formatter`); use the re-exports at the crate root.
    #![allow(
        missing_docs,
        clippy::too_many_arguments,
        reason = "generated code; the WIT documents its items"
    )]
    wit_bindgen::generate!({
        path: "../wit",
        world: "formatter",
        pub_export_macro: true,
        export_macro_name: "__export_formatter",
        default_bindings_module: "shipper_sdk::bindings",
        runtime_path: "shipper_sdk::__wit_bindgen_rt",
        // Lets plugin tests compare emits with `assert_eq!`.
        additional_derives: [PartialEq],
    });
}

#[doc(hidden)]
pub mod batch_bindings {
    //! The raw wit-bindgen output of world `batch-formatter`, sharing the types of
    //! [`bindings`](super::bindings).
    #![allow(
        missing_docs,
        clippy::too_many_arguments,
        reason = "generated code; the WIT documents its items"
    )]
    wit_bindgen::generate!({
        path: "../wit",
        world: "batch-formatter",
        pub_export_macro: true,
        export_macro_name: "__export_batch_formatter",
        default_bindings_module: "shipper_sdk::batch_bindings",
        runtime_path: "shipper_sdk::__wit_bindgen_rt",
        with: {
            "shipper:plugin/types@0.1.1": crate::bindings::shipper::plugin::types,
            "shipper:plugin/host@0.1.1": crate::bindings::shipper::plugin::host,
        },
    });
}

#[doc(hidden)]
pub use wit_bindgen::rt as __wit_bindgen_rt;

pub mod batch;
pub mod cef;
pub mod config;
pub mod decode;
pub mod emit;
pub mod flat;
pub mod host;
pub mod json;
pub mod leef;
pub mod mapping;
pub mod syslog;
pub mod testing;
pub mod time;

mod glue;

pub use bindings::shipper::plugin::types::{
    BatchInfo, Emit, ErrorKind, Field, HecBody, HecEvent, Payload, PluginInfo, RecordError,
    SdElement, Severity, SyslogMessage, Timestamp,
};
pub use config::{Config, ConfigError};
pub use decode::{Group, Log};

/// A formatter plugin with state (usually its parsed config).
///
/// `init` runs on every new instance (start, recycle, after a trap, at hot swap): read the
/// keys you know from `config` with its typed getters; keys you did not read are refused
/// afterwards with a message listing the known ones. `format` runs once per log.
///
/// For a plugin without config, a plain function and `export!(format)` is enough.
pub trait Plugin: Sized + 'static {
    /// Builds the plugin from its config.
    fn init(config: &mut Config) -> Result<Self, ConfigError>;

    /// Formats one log: zero emits drop it, several fan it out, an error dead-letters it.
    fn format(&self, group: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError>;

    /// Formats one log into the packed output of world `batch-formatter`
    /// ([`export!(batch plugin = …)`](crate::export)). The default pushes what
    /// [`format`](Plugin::format) returns; override it to write event text straight into
    /// `out` ([`EmitBuffer::push_hec_body`](batch::EmitBuffer::push_hec_body)). It must emit
    /// what `format` would: the host renders both the same way. On `Err` whatever this log
    /// pushed is dropped.
    fn format_into(
        &self,
        group: &Group<'_>,
        log: &Log<'_>,
        out: &mut batch::EmitBuffer,
    ) -> Result<(), RecordError> {
        for emit in self.format(group, log)? {
            out.push(emit);
        }
        Ok(())
    }
}

/// Exports a plugin as the component's `formatter` world. Use it once, at the crate root:
///
/// - `shipper_sdk::export!(format);` for a function
///   `fn format(group: &Group, log: &Log) -> Result<Vec<Emit>, RecordError>`; the plugin
///   then takes no config (`init` refuses any key);
/// - `shipper_sdk::export!(plugin = MyPlugin);` for a type implementing [`Plugin`];
/// - `shipper_sdk::export!(batch plugin = MyPlugin);` exports world `batch-formatter`
///   instead (one packed output per call, [`Plugin::format_into`]; needs a shipper that
///   runs WIT 0.1.1 or later, docs/plugins.md §12).
///
/// The plugin's name is the crate name without a `shipper-plugin-` prefix, its version the
/// crate version.
#[macro_export]
macro_rules! export {
    (batch plugin = $plugin:ty) => {
        const _: () = {
            struct __ShipperGuest;

            ::std::thread_local! {
                static __SHIPPER_PLUGIN: ::core::cell::RefCell<::core::option::Option<$plugin>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            impl $crate::__private::BatchGuest for __ShipperGuest {
                fn init(
                    config: ::std::string::String,
                ) -> ::core::result::Result<$crate::PluginInfo, ::std::string::String> {
                    let plugin = $crate::__private::init::<$plugin>(&config)?;
                    __SHIPPER_PLUGIN
                        .with_borrow_mut(|slot| *slot = ::core::option::Option::Some(plugin));
                    ::core::result::Result::Ok($crate::__private::plugin_info(
                        ::core::env!("CARGO_PKG_NAME"),
                        ::core::env!("CARGO_PKG_VERSION"),
                    ))
                }

                fn process_batch(
                    batch: $crate::BatchInfo,
                    group: ::std::vec::Vec<u8>,
                ) -> $crate::__private::ProcessBatchResult {
                    __SHIPPER_PLUGIN.with_borrow(|slot| match slot {
                        ::core::option::Option::Some(plugin) => {
                            $crate::__private::process_batch(plugin, &batch, &group)
                        }
                        ::core::option::Option::None => ::core::result::Result::Err(
                            "`process-batch` was called before a successful `init`".into(),
                        ),
                    })
                }
            }

    $crate::batch_bindings::__export_batch_formatter!(__ShipperGuest with_types_in $crate::batch_bindings);
        };
    };
    (plugin = $plugin:ty) => {
        const _: () = {
            struct __ShipperGuest;

            ::std::thread_local! {
                static __SHIPPER_PLUGIN: ::core::cell::RefCell<::core::option::Option<$plugin>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            impl $crate::__private::Guest for __ShipperGuest {
                fn init(
                    config: ::std::string::String,
                ) -> ::core::result::Result<$crate::PluginInfo, ::std::string::String> {
                    let plugin = $crate::__private::init::<$plugin>(&config)?;
                    __SHIPPER_PLUGIN
                        .with_borrow_mut(|slot| *slot = ::core::option::Option::Some(plugin));
                    ::core::result::Result::Ok($crate::__private::plugin_info(
                        ::core::env!("CARGO_PKG_NAME"),
                        ::core::env!("CARGO_PKG_VERSION"),
                    ))
                }

                fn process(
                    batch: $crate::BatchInfo,
                    group: ::std::vec::Vec<u8>,
                ) -> $crate::__private::ProcessResult {
                    __SHIPPER_PLUGIN.with_borrow(|slot| match slot {
                        ::core::option::Option::Some(plugin) => {
                            $crate::__private::process(plugin, &batch, &group)
                        }
                        ::core::option::Option::None => ::core::result::Result::Err(
                            "`process` was called before a successful `init`".into(),
                        ),
                    })
                }
            }

    $crate::bindings::__export_formatter!(__ShipperGuest with_types_in $crate::bindings);
        };
    };
    ($format:path) => {
        const _: () = {
            struct __ShipperFn;

            impl $crate::Plugin for __ShipperFn {
                fn init(
                    _config: &mut $crate::Config,
                ) -> ::core::result::Result<Self, $crate::ConfigError> {
                    ::core::result::Result::Ok(__ShipperFn)
                }

                fn format(
                    &self,
                    group: &$crate::Group<'_>,
                    log: &$crate::Log<'_>,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::Emit>, $crate::RecordError>
                {
                    $format(group, log)
                }
            }

            $crate::export!(plugin = __ShipperFn);
        };
    };
}

/// What `export!` expands to use; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::batch_bindings::Guest as BatchGuest;
    pub use crate::bindings::Guest;
    pub use crate::glue::{
        ProcessBatchResult, ProcessResult, init, plugin_info, process, process_batch,
    };
}
