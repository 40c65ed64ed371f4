//! The tokens of PHP's `serialize()` format: literals, numbers, lengths
//! checked against the rest of the input; and what PHP 8 writes exactly.

use super::Parser;
use crate::codec::encode::write_float;
use crate::value::{RawKind, Value};
use crate::{DecodeProblem, Error};

/// Smallest key/value pair: `i:0;N;`.
const MIN_PAIR: usize = 6;

impl<'a> Parser<'a> {
    pub(super) fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    pub(crate) fn peek(&self) -> Result<u8, Error> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.fail(DecodeProblem::Truncated))
    }

    /// Take `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(self.fail(DecodeProblem::Truncated));
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn expect(&mut self, lit: &'static [u8], what: &'static str) -> Result<(), Error> {
        let rest = &self.input[self.pos.min(self.input.len())..];
        if rest.starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else if lit.starts_with(rest) {
            Err(self.fail(DecodeProblem::Truncated))
        } else {
            Err(self.fail(DecodeProblem::Syntax(what)))
        }
    }

    pub(super) fn digits(&mut self) -> Result<&'a [u8], Error> {
        let start = self.pos;
        while self.input.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(if self.at_end() {
                self.fail(DecodeProblem::Truncated)
            } else {
                self.fail(DecodeProblem::Syntax("a digit"))
            });
        }
        Ok(&self.input[start..self.pos])
    }

    /// An unsigned decimal (a length, count or reference), and whether it
    /// is written canonically (no leading zero).
    pub(super) fn unsigned(&mut self) -> Result<(u64, bool), Error> {
        let start = self.pos;
        let d = self.digits()?;
        let mut n: u64 = 0;
        for &c in d {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(c - b'0')))
                .ok_or(Error::Decode {
                    offset: start,
                    problem: DecodeProblem::LengthOutOfRange,
                })?;
        }
        Ok((n, d.len() == 1 || d[0] != b'0'))
    }

    /// A byte length that fits in what is left after the current position.
    pub(super) fn length(&mut self) -> Result<(usize, bool), Error> {
        let start = self.pos;
        let (n, canonical) = self.unsigned()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() => Ok((n, canonical)),
            _ => Err(Error::Decode {
                offset: start,
                problem: DecodeProblem::LengthOutOfRange,
            }),
        }
    }

    /// An element count that the rest of the input could hold.
    pub(super) fn count(&mut self) -> Result<(usize, bool), Error> {
        let start = self.pos;
        let (n, canonical) = self.unsigned()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() / MIN_PAIR => Ok((n, canonical)),
            _ => Err(Error::Decode {
                offset: start,
                problem: DecodeProblem::LengthOutOfRange,
            }),
        }
    }

    /// `[+-]?[0-9]+`
    pub(super) fn int_text(&mut self) -> Result<(), Error> {
        if matches!(self.input.get(self.pos), Some(b'+' | b'-')) {
            self.pos += 1;
        }
        self.digits().map(|_| ())
    }

    /// PHP's float grammar: `NAN`, `INF`, `-INF`, or
    /// `[+-]?(digits[.digits*]|.digits)([eE][+-]?digits)?`.
    pub(super) fn float_text(&mut self) -> Result<(), Error> {
        let rest = &self.input[self.pos.min(self.input.len())..];
        for special in [&b"NAN"[..], b"-INF", b"INF"] {
            if rest.starts_with(special) {
                self.pos += special.len();
                return Ok(());
            }
        }
        if matches!(self.input.get(self.pos), Some(b'+' | b'-')) {
            self.pos += 1;
        }
        let int = self.skip_digits();
        let mut frac = 0;
        if self.input.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            frac = self.skip_digits();
        }
        if int == 0 && frac == 0 {
            return Err(if self.at_end() {
                self.fail(DecodeProblem::Truncated)
            } else {
                self.fail(DecodeProblem::Syntax("a number"))
            });
        }
        if matches!(self.input.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            self.int_text()?;
        }
        Ok(())
    }

    pub(super) fn skip_digits(&mut self) -> usize {
        let start = self.pos;
        while self.input.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// After `s`: `:<len>:"<bytes>";`; returns the bytes and whether the
    /// length was canonical.
    pub(super) fn string_body(&mut self) -> Result<(&'a [u8], bool), Error> {
        self.expect(b":", "`:`")?;
        let (n, canonical) = self.length()?;
        self.expect(b":\"", "`:\"`")?;
        let bytes = self.take(n)?;
        self.expect(b"\";", "`\";`")?;
        Ok((bytes, canonical))
    }
}

pub(super) fn raw_kind(text: &[u8]) -> RawKind {
    match text.first() {
        Some(b'O') => RawKind::Object,
        Some(b'C') => RawKind::Custom,
        Some(b'E') => RawKind::Enum,
        Some(b'r') => RawKind::ObjectRef,
        Some(b'R') => RawKind::Reference,
        _ => RawKind::Other,
    }
}

/// An integer PHP 8 writes exactly as `text`.
pub(super) fn canonical_int(text: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(text).ok()?;
    let n: i64 = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}

/// A float PHP 8 writes exactly as `text`.
fn canonical_float(text: &[u8]) -> Option<f64> {
    let x = match text {
        b"NAN" => f64::NAN,
        b"INF" => f64::INFINITY,
        b"-INF" => f64::NEG_INFINITY,
        _ => std::str::from_utf8(text).ok()?.parse().ok()?,
    };
    let mut out = Vec::new();
    write_float(&mut out, x);
    (out == text).then_some(x)
}

/// A complete, already validated scalar text (`N;`, `b:1;`, `i:5;`,
/// `d:0.5;`, `s:1:"x";`) as PHP 8 would write it, else `None`.
pub(super) fn canonical_scalar(text: &[u8]) -> Option<Value> {
    match text {
        b"N;" => return Some(Value::Null),
        b"b:0;" => return Some(Value::Bool(false)),
        b"b:1;" => return Some(Value::Bool(true)),
        _ => {}
    }
    let body = text.get(2..text.len().checked_sub(1)?)?;
    match text {
        [b'i', b':', ..] => canonical_int(body).map(Value::Int),
        [b'd', b':', ..] => canonical_float(body).map(Value::Float),
        [b's', b':', ..] => {
            // s:<len>:"<bytes>";  (validated: the length matches)
            let colon = body.iter().position(|&c| c == b':')?;
            let len = &body[..colon];
            let canonical = len.len() == 1 || len.first() != Some(&b'0');
            let bytes = body.get(colon + 2..body.len().checked_sub(1)?)?;
            canonical.then(|| Value::Str(bytes.to_vec()))
        }
        _ => None,
    }
}
