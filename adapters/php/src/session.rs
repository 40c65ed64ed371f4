//! A decoded PHP session: `$_SESSION`'s keys and values, written back
//! byte-exact where nothing changed.

use std::ops::Range;
use std::sync::Arc;

use crate::codec::{Parser, Remap, write_key, write_value};
use crate::value::{Key, Value};
use crate::{DecodeProblem, EncodeProblem, Error, Format, Limits};

/// The contents of one PHP session (`$_SESSION`), in one of PHP's
/// [`Format`]s.
///
/// Decoding keeps every value the bridge does not understand as raw bytes;
/// [`encode`](Self::encode) writes them back unchanged. References between
/// values (`r:` / `R:`, numbered by position in the whole session) are
/// renumbered when a value before them changes size, so PHP reads the same
/// object graph back.
///
/// ```
/// use session_bridge_php::{Format, Limits, PhpSession, Value};
///
/// let mut s = PhpSession::decode(Format::Php, br#"user_id|i:42;cart|O:4:"Cart":0:{}"#, &Limits::default())?;
/// assert_eq!(s.get("user_id"), Some(&Value::Int(42)));
/// s.insert("lang", "fr");
/// assert_eq!(s.encode()?, br#"user_id|i:42;cart|O:4:"Cart":0:{}lang|s:2:"fr";"#);
/// # Ok::<_, session_bridge_php::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PhpSession {
    format: Format,
    entries: Vec<Entry>,
    /// The decoded bytes (entries point into them).
    source: Arc<[u8]>,
    /// Which document raw values must come from to be renumbered here.
    doc: u64,
    /// A `C:` value was decoded: see [`EncodeProblem::SerializableMoved`].
    custom: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    key: Key,
    value: Value,
    /// Where the value was in the decoded session; `None` once replaced.
    origin: Option<Origin>,
}

#[derive(Debug, Clone)]
struct Origin {
    first: u32,
    slots: u32,
    span: Range<usize>,
}

impl PhpSession {
    /// An empty session in `format`.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            entries: Vec::new(),
            source: Arc::from(&[][..]),
            doc: 0,
            custom: false,
        }
    }

    /// Decode session data as PHP's session handler `format` wrote it. An
    /// empty input is an empty session.
    pub fn decode(format: Format, input: &[u8], limits: &Limits) -> Result<Self, Error> {
        let mut p = Parser::new(input, limits)?;
        let mut entries = Vec::new();
        match format {
            Format::Php => {
                while !p.at_end() {
                    let rest = p.input().get(p.pos..).unwrap_or_default();
                    let Some(bar) = rest.iter().position(|&c| c == b'|') else {
                        return Err(p.fail(DecodeProblem::Syntax("`|` after a session key")));
                    };
                    let key = p.take(bar)?.to_vec();
                    p.expect(b"|", "`|`")?;
                    entries.push(entry(&mut p, Key::Str(key))?);
                }
            }
            Format::PhpBinary => {
                while !p.at_end() {
                    let len = p.peek()?;
                    if len & 0x80 != 0 {
                        return Err(p.fail(DecodeProblem::Syntax("a key length below 128")));
                    }
                    p.take(1)?;
                    let key = p.take(usize::from(len))?.to_vec();
                    entries.push(entry(&mut p, Key::Str(key))?);
                }
            }
            Format::PhpSerialize => {
                if !input.is_empty() {
                    let n = p.session_array_header()?;
                    for _ in 0..n {
                        let Some(key) = p.key()? else {
                            return Err(p.fail(DecodeProblem::Syntax("a canonical key")));
                        };
                        entries.push(entry(&mut p, key)?);
                    }
                    p.expect(b"}", "`}`")?;
                    p.finish()?;
                }
            }
        }
        Ok(Self {
            format,
            entries,
            source: Arc::from(input),
            doc: p.doc,
            custom: p.custom,
        })
    }

    /// Encode in the session's format.
    ///
    /// Values decoded and left alone are written as they were read; raw
    /// values keep their bytes, with reference numbers adjusted to where
    /// their targets now are. Fails when a reference points into a replaced
    /// or removed value, when a key does not fit the format, or (sessions
    /// with `C:` values only) when a key changed before keys left alone.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let base: u32 = match self.format {
            Format::PhpSerialize => 1,
            Format::Php | Format::PhpBinary => 0,
        };
        // Where each entry lands, and which decoded entries are untouched
        // (their slots can be pointed at still).
        let mut next = base;
        let mut moved = Vec::new(); // (old first, slots, new first), by old first
        let mut in_place = Vec::with_capacity(self.entries.len()); // untouched and not moved
        let mut buf = Vec::new();
        for e in &self.entries {
            let slots = e.value.slots();
            let mut kept = false;
            if let Some(o) = &e.origin {
                buf.clear();
                let mut scratch = 0;
                write_value(&mut buf, &e.value, &mut scratch, &Remap::Verbatim)?;
                if o.slots == slots && self.source.get(o.span.clone()) == Some(&buf[..]) {
                    moved.push((o.first, o.slots, next + 1));
                    kept = o.first == next + 1;
                }
            }
            in_place.push(kept);
            next = next.saturating_add(slots);
        }
        if self.custom {
            // Slot numbers after a `C:` value are not known (its payload may
            // take slots), so references are written as they are, and only
            // keys after the last untouched one may change.
            let last = in_place.iter().rposition(|&k| k).map_or(0, |i| i + 1);
            if in_place[..last].iter().any(|&k| !k) {
                return Err(Error::Encode(EncodeProblem::SerializableMoved));
            }
        }
        moved.sort_unstable_by_key(|m| m.0);
        let (doc, custom) = (self.doc, self.custom);
        let map = |from: u64, old: u32| -> Option<u32> {
            if from != doc || doc == 0 {
                return None;
            }
            if custom || (base == 1 && old == 1) {
                return Some(old);
            }
            let i = moved.partition_point(|m| m.0 <= old).checked_sub(1)?;
            let (first, slots, new_first) = moved[i];
            (old - first < slots).then(|| new_first + (old - first))
        };
        let remap = Remap::With {
            map: &map,
            fixed: self.custom,
        };

        let mut out = Vec::new();
        if self.entries.is_empty() && self.doc != 0 && self.source.is_empty() {
            // Decoded from nothing, still nothing (`php_serialize` would
            // otherwise say `a:0:{}`).
            return Ok(out);
        }
        let mut slot = base;
        if self.format == Format::PhpSerialize {
            out.extend_from_slice(b"a:");
            out.extend_from_slice(self.entries.len().to_string().as_bytes());
            out.extend_from_slice(b":{");
        }
        for e in &self.entries {
            self.write_session_key(&mut out, &e.key)?;
            write_value(&mut out, &e.value, &mut slot, &remap)?;
        }
        if self.format == Format::PhpSerialize {
            out.push(b'}');
        }
        Ok(out)
    }

    fn write_session_key(&self, out: &mut Vec<u8>, key: &Key) -> Result<(), Error> {
        let unsupported = Error::Encode(EncodeProblem::UnsupportedKey);
        match (self.format, key) {
            (Format::Php, Key::Str(k)) if !k.contains(&b'|') => {
                out.extend_from_slice(k);
                out.push(b'|');
            }
            (Format::PhpBinary, Key::Str(k)) => {
                let len = u8::try_from(k.len())
                    .ok()
                    .filter(|&n| n < 0x80)
                    .ok_or(unsupported)?;
                out.push(len);
                out.extend_from_slice(k);
            }
            (Format::PhpSerialize, key) => write_key(out, key),
            _ => return Err(unsupported),
        }
        Ok(())
    }

    /// The session's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the session holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys and values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.entries.iter().map(|e| (&e.key, &e.value))
    }

    /// The value of `$_SESSION[key]`.
    pub fn get(&self, key: impl Into<Key>) -> Option<&Value> {
        let key = key.into();
        self.entries
            .iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    /// The value of `$_SESSION[key]`, to change in place.
    pub fn get_mut(&mut self, key: impl Into<Key>) -> Option<&mut Value> {
        let key = key.into();
        self.entries
            .iter_mut()
            .rev()
            .find(|e| e.key == key)
            .map(|e| &mut e.value)
    }

    /// Set `$_SESSION[key]`: in place when it exists (PHP keeps the
    /// position too), else appended. Returns the previous value.
    pub fn insert(&mut self, key: impl Into<Key>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().rev().find(|e| e.key == key) {
            Some(e) => {
                e.origin = None;
                Some(std::mem::replace(&mut e.value, value))
            }
            None => {
                self.entries.push(Entry {
                    key,
                    value,
                    origin: None,
                });
                None
            }
        }
    }

    /// `unset($_SESSION[key])`; returns the value it had.
    pub fn remove(&mut self, key: impl Into<Key>) -> Option<Value> {
        let key = key.into();
        let mut found = None;
        self.entries.retain_mut(|e| {
            if e.key == key {
                found = Some(std::mem::replace(&mut e.value, Value::Null));
                false
            } else {
                true
            }
        });
        found
    }
}

fn entry(p: &mut Parser<'_>, key: Key) -> Result<Entry, Error> {
    let start = p.pos;
    let taken = p.slots;
    let value = p.value(0)?;
    Ok(Entry {
        key,
        value,
        origin: Some(Origin {
            first: taken + 1,
            slots: p.slots - taken,
            span: start..p.pos,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Array;

    fn decode(format: Format, input: &[u8]) -> PhpSession {
        PhpSession::decode(format, input, &Limits::default()).unwrap()
    }

    #[test]
    fn untouched_sessions_encode_to_their_input() {
        for (format, input) in [
            (
                Format::Php,
                &br#"a|i:1;o|O:8:"stdClass":1:{s:4:"self";r:2;}p|r:2;q|R:1;"#[..],
            ),
            (Format::Php, b""),
            (Format::Php, b"|N;x|d:0.1;"),
            (Format::PhpBinary, b"\x01ai:1;\x01bs:2:\"hi\";"),
            (Format::PhpSerialize, br#"a:2:{s:1:"a";i:1;i:7;R:2;}"#),
            (Format::PhpSerialize, b"a:0:{}"),
        ] {
            assert_eq!(decode(format, input).encode().unwrap(), input);
        }
    }

    #[test]
    fn references_follow_values_that_move() {
        let mut s = decode(
            Format::Php,
            br#"a|i:1;o|O:8:"stdClass":1:{s:4:"self";r:2;}p|r:2;"#,
        );
        // `a` grows from 1 slot to 4: the object moves from slot 2 to 5.
        s.insert("a", Array::list([1i64, 2, 3]));
        assert_eq!(
            s.encode().unwrap(),
            br#"a|a:3:{i:0;i:1;i:1;i:2;i:2;i:3;}o|O:8:"stdClass":1:{s:4:"self";r:5;}p|r:5;"#
        );
        // Removing it moves the object to slot 1.
        s.remove("a");
        assert_eq!(
            s.encode().unwrap(),
            br#"o|O:8:"stdClass":1:{s:4:"self";r:1;}p|r:1;"#
        );
    }

    #[test]
    fn php_serialize_counts_the_session_array_as_slot_one() {
        let mut s = decode(Format::PhpSerialize, br#"a:2:{s:1:"a";i:1;s:1:"b";R:2;}"#);
        s.insert("z", 5i64);
        assert_eq!(
            s.encode().unwrap(),
            br#"a:3:{s:1:"a";i:1;s:1:"b";R:2;s:1:"z";i:5;}"#
        );
    }

    #[test]
    fn references_into_replaced_values_fail_to_encode() {
        let mut s = decode(Format::Php, b"a|a:1:{i:0;i:1;}b|R:2;");
        s.insert("a", 1i64);
        assert_eq!(
            s.encode().unwrap_err().to_string(),
            Error::Encode(EncodeProblem::DanglingReference).to_string()
        );
        // Changing a value in place without changing its bytes is no change.
        let mut s = decode(Format::Php, b"a|a:1:{i:0;i:1;}b|R:2;");
        if let Some(Value::Array(a)) = s.get_mut("a") {
            a.insert(0i64, 1i64);
        }
        assert_eq!(s.encode().unwrap(), b"a|a:1:{i:0;i:1;}b|R:2;");
    }

    #[test]
    fn raw_values_moved_between_sessions_keep_no_foreign_references() {
        let a = decode(Format::Php, br#"o|O:8:"stdClass":0:{}p|r:1;"#);
        let mut b = decode(Format::Php, b"x|i:1;");
        b.insert("p", a.get("p").unwrap().clone());
        assert!(b.encode().is_err());
        // An object referring only to itself is fine anywhere.
        let a = decode(Format::Php, br#"o|O:8:"stdClass":1:{s:1:"s";r:1;}"#);
        b.insert("p", a.get("o").unwrap().clone());
        assert_eq!(
            b.encode().unwrap(),
            br#"x|i:1;p|O:8:"stdClass":1:{s:1:"s";r:2;}"#
        );
    }

    #[test]
    fn sessions_with_serializable_values_change_only_at_the_end() {
        let input = br#"c|C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}b|i:1;z|r:1;"#;
        let mut s = decode(Format::Php, input);
        s.insert("bridge", "x");
        let mut expected = input.to_vec();
        expected.extend_from_slice(br#"bridge|s:1:"x";"#);
        assert_eq!(s.encode().unwrap(), expected);
        s.insert("b", Array::list([1i64]));
        assert!(s.encode().is_err());
    }

    #[test]
    fn keys_must_fit_the_format() {
        let mut s = PhpSession::new(Format::Php);
        s.insert("a|b", 1i64);
        assert!(s.encode().is_err());
        let mut s = PhpSession::new(Format::PhpBinary);
        s.insert("k".repeat(127), 1i64);
        assert!(s.encode().is_ok());
        s.insert("k".repeat(128), 1i64);
        assert!(s.encode().is_err());
        let mut s = PhpSession::new(Format::PhpSerialize);
        s.insert(3i64, 1i64);
        assert_eq!(s.encode().unwrap(), b"a:1:{i:3;i:1;}");
    }

    #[test]
    fn non_canonical_values_pass_through_as_raw() {
        let input = br#"f|d:0.10000000000000001;i|i:+5;s|s:01:"x";a|a:1:{i:01;N;}e|S:1:"\61";"#;
        let s = decode(Format::Php, input);
        for (_, v) in s.iter() {
            assert!(
                matches!(v, Value::Raw(r) if r.kind() == crate::RawKind::Other),
                "{v:?}"
            );
        }
        assert_eq!(s.encode().unwrap(), input);
    }
}
