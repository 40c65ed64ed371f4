//! PHP's `serialize()` format and the three session formats built on it.
//!
//! | `session.serialize_handler` | layout |
//! | --- | --- |
//! | `php` (PHP's default) | `key|<value>key2|<value>` |
//! | `php_binary` | `<length byte>key<value>...` (keys up to 127 bytes) |
//! | `php_serialize` | one serialized array, `a:<n>:{...}` |
//!
//! Values are read as [`Value`]s: null, bool, int, float, byte string and
//! array are typed; objects (`O:`, `C:`), enums (`E:`), references (`r:`,
//! `R:`) and anything written in a form PHP 8 would not write stay
//! [`Raw`](crate::Raw) bytes, written back unchanged. Decoding is bounded by
//! [`Limits`] and never panics.

mod decode;
mod encode;

use std::fmt;

pub(crate) use decode::Parser;
pub(crate) use encode::{Remap, write_key, write_value};

use crate::{Error, Value};

/// Default bound on input size: 1 MiB.
pub const DEFAULT_MAX_INPUT: usize = 1 << 20;
/// Default bound on nesting depth.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Default bound on the number of values in one input.
pub const DEFAULT_MAX_ELEMENTS: usize = 100_000;
/// Depth above which [`Limits::max_depth`] is not honoured: decoding
/// recurses, and must fit in a 2 MiB thread stack with room to spare (256
/// levels take about 0.8 MiB in a debug build, far less optimised).
pub const MAX_DEPTH_CAP: usize = 256;

/// Bounds on what a decoder accepts. Lengths are also checked against what
/// is left of the input before anything is allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest input, in bytes.
    pub max_input: usize,
    /// Deepest nesting of arrays and objects (a top-level scalar is at
    /// depth 0). At most [`MAX_DEPTH_CAP`].
    pub max_depth: usize,
    /// Most values (scalars, arrays, objects, references) in one input.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input: DEFAULT_MAX_INPUT,
            max_depth: DEFAULT_MAX_DEPTH,
            max_elements: DEFAULT_MAX_ELEMENTS,
        }
    }
}

/// A `session.serialize_handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// `php`, PHP's default: `key|<value>` repeated.
    #[default]
    Php,
    /// `php_binary`: a length byte, the key, the value; repeated.
    PhpBinary,
    /// `php_serialize`: the whole session as one serialized array.
    PhpSerialize,
}

impl Format {
    /// The name PHP uses in `session.serialize_handler`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Php => "php",
            Self::PhpBinary => "php_binary",
            Self::PhpSerialize => "php_serialize",
        }
    }

    /// The format named `name` as in `session.serialize_handler`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "php" => Some(Self::Php),
            "php_binary" => Some(Self::PhpBinary),
            "php_serialize" => Some(Self::PhpSerialize),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Decode one serialized value, as `unserialize()` reads it: the whole input
/// must be that one value.
///
/// ```
/// use session_bridge_php::{Limits, Value, unserialize};
///
/// let v = unserialize(br#"a:1:{s:4:"user";s:5:"alice";}"#, &Limits::default())?;
/// assert_eq!(v.as_array().and_then(|a| a.get("user")), Some(&Value::from("alice")));
/// # Ok::<_, session_bridge_php::Error>(())
/// ```
pub fn unserialize(input: &[u8], limits: &Limits) -> Result<Value, Error> {
    let mut p = Parser::new(input, limits)?;
    let v = p.value(0)?;
    p.finish()?;
    Ok(v)
}

/// Encode one value as `serialize()` writes it. [`Raw`](crate::Raw) values
/// are written as they were decoded, references included; to move values
/// that references point at, go through a [`PhpSession`](crate::PhpSession),
/// which renumbers them.
///
/// ```
/// use session_bridge_php::{Array, Value, serialize};
///
/// let v = Value::Array(Array::list(["a", "b"]));
/// assert_eq!(serialize(&v), br#"a:2:{i:0;s:1:"a";i:1;s:1:"b";}"#);
/// ```
pub fn serialize(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut slot = 0;
    // Verbatim writing never fails.
    let _ = write_value(&mut out, value, &mut slot, &Remap::Verbatim);
    out
}
