//! A bounded, non-panicking reader of PHP's `serialize()` format.
//!
//! Slot numbers follow PHP's unserializer: every value but an `R:` takes the
//! next slot, in document order, starting at 1; `r:<n>` / `R:<n>` point at
//! slot `n`. They are recorded so that a session can renumber references
//! when values change size.

use std::sync::atomic::{AtomicU64, Ordering};

mod tokens;

use tokens::{canonical_int, canonical_scalar, raw_kind};

use super::{Limits, MAX_DEPTH_CAP};
use crate::value::{Array, Key, Raw, RefSite, Value};
use crate::{DecodeProblem, Error};

/// Tells decoded documents apart, so a raw value moved into another session
/// is not renumbered against the wrong document.
static NEXT_DOC: AtomicU64 = AtomicU64::new(1);

/// A reference found while decoding, with its absolute offset.
#[derive(Debug, Clone, Copy)]
struct Site {
    at: usize,
    len: usize,
    target: u32,
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    pos: usize,
    slots: u32,
    elements: usize,
    sites: usize,
    custom: bool,
}

pub(crate) struct Parser<'a> {
    input: &'a [u8],
    pub(crate) pos: usize,
    max_depth: usize,
    max_elements: usize,
    /// Slots taken so far (the last value's number).
    pub(crate) slots: u32,
    elements: usize,
    sites: Vec<Site>,
    /// A `C:` value was seen: its payload may take slots of its own that
    /// cannot be counted, so reference bounds are not checked after it.
    pub(crate) custom: bool,
    pub(crate) doc: u64,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(input: &'a [u8], limits: &Limits) -> Result<Self, Error> {
        if input.len() > limits.max_input {
            return Err(Error::Decode {
                offset: 0,
                problem: DecodeProblem::TooLarge {
                    len: input.len(),
                    max: limits.max_input,
                },
            });
        }
        Ok(Self {
            input,
            pos: 0,
            max_depth: limits.max_depth.min(MAX_DEPTH_CAP),
            max_elements: limits.max_elements.min(u32::MAX as usize - 1),
            slots: 0,
            elements: 0,
            sites: Vec::new(),
            custom: false,
            doc: NEXT_DOC.fetch_add(1, Ordering::Relaxed),
        })
    }

    pub(crate) fn input(&self) -> &'a [u8] {
        self.input
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    pub(crate) fn fail(&self, problem: DecodeProblem) -> Error {
        Error::Decode {
            offset: self.pos,
            problem,
        }
    }

    /// Error unless the whole input was read.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.fail(DecodeProblem::Syntax("the end of the input")))
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            slots: self.slots,
            elements: self.elements,
            sites: self.sites.len(),
            custom: self.custom,
        }
    }

    fn reset(&mut self, m: Mark) {
        self.pos = m.pos;
        self.slots = m.slots;
        self.elements = m.elements;
        self.sites.truncate(m.sites);
        self.custom = m.custom;
    }

    /// Count one value against the bounds.
    fn enter(&mut self, depth: usize) -> Result<(), Error> {
        if depth > self.max_depth {
            return Err(self.fail(DecodeProblem::TooDeep));
        }
        self.elements += 1;
        if self.elements > self.max_elements {
            return Err(self.fail(DecodeProblem::TooManyElements));
        }
        Ok(())
    }

    fn slot(&mut self) {
        self.slots += 1;
    }

    /// `r:<n>;` or `R:<n>;`: `n` must name a slot already taken.
    fn reference(&mut self) -> Result<(), Error> {
        let at = self.pos;
        let (n, canonical) = self.unsigned()?;
        let len = self.pos - at;
        let target = u32::try_from(n).unwrap_or(u32::MAX);
        // References are renumbered on encode, so only the form PHP writes
        // (no leading zeros) can come back byte for byte: refuse the rest.
        if !canonical || target == 0 || (target > self.slots && !self.custom) {
            return Err(Error::Decode {
                offset: at,
                problem: DecodeProblem::BadReference,
            });
        }
        self.sites.push(Site { at, len, target });
        self.expect(b";", "`;`")
    }

    /// An array or object key: `i:<n>;` or `s:<len>:"...";`.
    fn skip_key(&mut self) -> Result<(), Error> {
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                self.expect(b":", "`:`")?;
                self.int_text()?;
                self.expect(b";", "`;`")
            }
            b's' => {
                self.pos += 1;
                self.string_body().map(|_| ())
            }
            _ => Err(self.fail(DecodeProblem::Syntax("an `i:` or `s:` key"))),
        }
    }
    // The recursive path (skip → skip_container → skip, value → array →
    // value) is kept to small functions, and everything else out of line,
    // so that deep nesting costs little stack even in debug builds.

    /// Validate and step over one value of any kind, counting its slots and
    /// recording its references.
    fn skip(&mut self, depth: usize) -> Result<(), Error> {
        self.enter(depth)?;
        match self.peek()? {
            b'a' | b'O' => self.skip_container(depth),
            _ => self.skip_leaf(),
        }
    }

    fn skip_container(&mut self, depth: usize) -> Result<(), Error> {
        let n = self.container_header()?;
        for _ in 0..n {
            self.skip_key()?;
            self.skip(depth + 1)?;
        }
        self.expect(b"}", "`}`")
    }

    /// `a:<n>:{` or `O:<len>:"<class>":<n>:{`; takes the container's slot
    /// and returns `n`.
    #[inline(never)]
    fn container_header(&mut self) -> Result<usize, Error> {
        if self.peek()? == b'O' {
            self.expect(b"O:", "`O:`")?;
            let (len, _) = self.length()?;
            self.expect(b":\"", "`:\"`")?;
            self.take(len)?;
            self.expect(b"\":", "`\":`")?;
        } else {
            self.expect(b"a:", "`a:`")?;
        }
        let (n, _) = self.count()?;
        self.expect(b":{", "`:{`")?;
        self.slot();
        Ok(n)
    }

    /// Any value but an array or object.
    #[inline(never)]
    fn skip_leaf(&mut self) -> Result<(), Error> {
        let kind = self.peek()?;
        self.pos += 1;
        match kind {
            b'N' => self.expect(b";", "`;`")?,
            b'b' => {
                self.expect(b":", "`:`")?;
                match self.peek()? {
                    b'0' | b'1' => self.pos += 1,
                    _ => return Err(self.fail(DecodeProblem::Syntax("`0` or `1`"))),
                }
                self.expect(b";", "`;`")?;
            }
            b'i' => {
                self.expect(b":", "`:`")?;
                self.int_text()?;
                self.expect(b";", "`;`")?;
            }
            b'd' => {
                self.expect(b":", "`:`")?;
                self.float_text()?;
                self.expect(b";", "`;`")?;
            }
            b's' => {
                self.string_body()?;
            }
            b'S' => {
                self.expect(b":", "`:`")?;
                let (n, _) = self.length()?;
                self.expect(b":\"", "`:\"`")?;
                for _ in 0..n {
                    if self.peek()? == b'\\' {
                        let hex = self.take(3)?;
                        if !hex[1..].iter().all(u8::is_ascii_hexdigit) {
                            return Err(self.fail(DecodeProblem::Syntax("a `\\xx` escape")));
                        }
                    } else {
                        self.pos += 1;
                    }
                }
                self.expect(b"\";", "`\";`")?;
            }
            b'C' => {
                self.expect(b":", "`:`")?;
                let (n, _) = self.length()?;
                self.expect(b":\"", "`:\"`")?;
                self.take(n)?;
                self.expect(b"\":", "`\":`")?;
                let (n, _) = self.length()?;
                self.expect(b":{", "`:{`")?;
                self.take(n)?;
                self.expect(b"}", "`}`")?;
                self.custom = true;
            }
            b'E' => {
                self.expect(b":", "`:`")?;
                let (n, _) = self.length()?;
                self.expect(b":\"", "`:\"`")?;
                if !self.take(n)?.contains(&b':') {
                    return Err(self.fail(DecodeProblem::Syntax("an enum `Class:Case`")));
                }
                self.expect(b"\";", "`\";`")?;
            }
            b'r' => {
                self.expect(b":", "`:`")?;
                // An `r:` takes a slot of its own before it is resolved.
                self.slot();
                return self.reference();
            }
            b'R' => {
                self.expect(b":", "`:`")?;
                return self.reference();
            }
            _ => {
                self.pos -= 1;
                return Err(self.fail(DecodeProblem::Syntax("a value")));
            }
        }
        self.slot();
        Ok(())
    }

    /// Decode one value: typed where PHP 8 would write it exactly so,
    /// [`Raw`] otherwise.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let start = self.mark();
        if self.peek()? == b'a' {
            if let Some(array) = self.array(depth)? {
                return Ok(Value::Array(array));
            }
            // Not canonical: keep it whole, as bytes.
            self.reset(start);
        }
        self.skip(depth)?;
        Ok(self.finish_value(start))
    }

    /// The value stepped over since `start`, typed or raw.
    #[inline(never)]
    fn finish_value(&mut self, start: Mark) -> Value {
        let text = &self.input[start.pos..self.pos];
        if let Some(v) = canonical_scalar(text) {
            return v;
        }
        let refs = self
            .sites
            .drain(start.sites..)
            .map(|s| RefSite {
                at: s.at - start.pos,
                len: s.len,
                target: s.target,
            })
            .collect();
        Value::Raw(Raw {
            bytes: text.to_vec(),
            kind: raw_kind(text),
            refs,
            doc: self.doc,
            first_slot: start.slots + 1,
            slots: self.slots - start.slots,
        })
    }

    /// `a:<n>:{...}` with canonical counts and keys, else `None`.
    fn array(&mut self, depth: usize) -> Result<Option<Array>, Error> {
        self.enter(depth)?;
        let Some(n) = self.array_header()? else {
            return Ok(None);
        };
        let mut entries = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let Some(key) = self.key()? else {
                return Ok(None);
            };
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        self.expect(b"}", "`}`")?;
        Ok(Some(Array { entries }))
    }

    /// `a:<n>:{` with a canonical count (taking the slot), else `None`.
    #[inline(never)]
    fn array_header(&mut self) -> Result<Option<usize>, Error> {
        self.expect(b"a:", "`a:`")?;
        let (n, canonical) = self.count()?;
        if !canonical {
            return Ok(None);
        }
        self.expect(b":{", "`:{`")?;
        self.slot();
        Ok(Some(n))
    }

    /// A key as PHP 8 writes it, else `None`.
    pub(crate) fn key(&mut self) -> Result<Option<Key>, Error> {
        let start = self.pos;
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                self.expect(b":", "`:`")?;
                let digits = self.pos;
                self.int_text()?;
                let n = canonical_int(&self.input[digits..self.pos]);
                self.expect(b";", "`;`")?;
                Ok(n.map(Key::Int))
            }
            b's' => {
                self.pos += 1;
                let (bytes, canonical) = self.string_body()?;
                Ok(canonical.then(|| Key::Str(bytes.to_vec())))
            }
            _ => Err(Error::Decode {
                offset: start,
                problem: DecodeProblem::Syntax("an `i:` or `s:` key"),
            }),
        }
    }

    /// `a:<n>:{` of a `php_serialize` session: the count, canonical.
    pub(crate) fn session_array_header(&mut self) -> Result<usize, Error> {
        self.enter(0)?;
        self.expect(b"a:", "`a:`")?;
        let (n, canonical) = self.count()?;
        if !canonical {
            return Err(self.fail(DecodeProblem::Syntax("a canonical element count")));
        }
        self.expect(b":{", "`:{`")?;
        self.slot();
        Ok(n)
    }
}
