//! JSON for plugins: a fast writer ([`ObjectWriter`], [`write_str`]) in shipper's compact
//! style or in Python `json.dumps` style, a validator ([`is_valid`]) to embed a field's
//! nested JSON verbatim, a Python-compatible re-serialiser ([`python_redump`]) for
//! byte-compatibility with the seed scripts, and a small ordered tree ([`Value`]) for
//! config and test input.
//!
//! Does not own: HEC envelopes (the host renders them from a [`crate::HecEvent`]).

mod python;
mod validate;
mod value;
mod write;

pub use python::{python_redump, write_float_repr};
pub use validate::{MAX_DEPTH, is_valid, trim_ws};
pub use value::{ParseError, Value};
pub use write::{
    JsonStyle, ObjectWriter, escape_str_ascii_into, escape_str_into, write_str, write_string,
};
