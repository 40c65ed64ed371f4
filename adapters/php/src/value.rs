//! The values of a PHP session, as far as the bridge needs to understand
//! them; everything else stays [`Raw`] bytes.

/// An array key: PHP arrays are ordered maps keyed by integers or byte
/// strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `i:<n>;`
    Int(i64),
    /// `s:<len>:"<bytes>";` (PHP strings are byte strings).
    Str(Vec<u8>),
}

impl Key {
    /// The key as text, when it is a UTF-8 string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(b) => std::str::from_utf8(b).ok(),
            Self::Int(_) => None,
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Self::Str(s.as_bytes().to_vec())
    }
}

impl From<String> for Key {
    fn from(s: String) -> Self {
        Self::Str(s.into_bytes())
    }
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Self {
        Self::Str(b.to_vec())
    }
}

impl From<Vec<u8>> for Key {
    fn from(b: Vec<u8>) -> Self {
        Self::Str(b)
    }
}

impl From<i64> for Key {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

/// A PHP value.
///
/// The typed variants are what PHP 8 writes for scalars and arrays; a value
/// of any other kind, or written in a form PHP 8 would not write (a
/// 17-digit float from PHP 5, an `S:` escaped string), is [`Value::Raw`] and
/// is written back byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `N;`
    Null,
    /// `b:0;` / `b:1;`
    Bool(bool),
    /// `i:<n>;`
    Int(i64),
    /// `d:<x>;`, written as PHP 8 writes it (`serialize_precision = -1`).
    Float(f64),
    /// `s:<len>:"<bytes>";`
    Str(Vec<u8>),
    /// `a:<n>:{...}`
    Array(Array),
    /// Anything else, kept as the exact bytes it was decoded from.
    Raw(Raw),
}

impl Value {
    /// The string, when this is a string holding UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The bytes, when this is a string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Str(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, when this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The array, when this is one.
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Number of PHP's reference slots this value takes (every value but an
    /// `R:` takes one, arrays and objects one more per element).
    pub(crate) fn slots(&self) -> u32 {
        match self {
            Self::Array(a) => a
                .entries
                .iter()
                .fold(1u32, |n, (_, v)| n.saturating_add(v.slots())),
            Self::Raw(r) => r.slots,
            _ => 1,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Str(s.as_bytes().to_vec())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Str(s.into_bytes())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Self::Str(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Self::Float(x)
    }
}

impl From<Array> for Value {
    fn from(a: Array) -> Self {
        Self::Array(a)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// A PHP array: an ordered list of key/value pairs.
///
/// Decoded arrays keep their order and, should the input hold one key twice,
/// both pairs (lookups see the last, as PHP does).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Array {
    pub(crate) entries: Vec<(Key, Value)>,
}

impl Array {
    /// An empty array.
    pub fn new() -> Self {
        Self::default()
    }

    /// A list: keys `0, 1, 2, ...`.
    pub fn list<V: Into<Value>>(values: impl IntoIterator<Item = V>) -> Self {
        (0i64..).zip(values).collect()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The value under `key`.
    pub fn get(&self, key: impl Into<Key>) -> Option<&Value> {
        let key = key.into();
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The value under `key`, to change in place.
    pub fn get_mut(&mut self, key: impl Into<Key>) -> Option<&mut Value> {
        let key = key.into();
        self.entries
            .iter_mut()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Set `key` to `value`: in place when the key exists (its position is
    /// kept, as PHP does), else appended. Returns the previous value.
    pub fn insert(&mut self, key: impl Into<Key>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().rev().find(|(k, _)| *k == key) {
            Some((_, slot)) => Some(std::mem::replace(slot, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Remove `key` (every pair with it); returns the value lookups saw.
    pub fn remove(&mut self, key: impl Into<Key>) -> Option<Value> {
        let key = key.into();
        let mut found = None;
        self.entries.retain_mut(|(k, v)| {
            if *k == key {
                found = Some(std::mem::replace(v, Value::Null));
                false
            } else {
                true
            }
        });
        found
    }
}

impl<K: Into<Key>, V: Into<Value>> FromIterator<(K, V)> for Array {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut a = Self::new();
        for (k, v) in iter {
            a.insert(k, v);
        }
        a
    }
}

/// What kind of value a [`Raw`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawKind {
    /// `O:` an object.
    Object,
    /// `C:` an object of a class implementing `Serializable`.
    Custom,
    /// `E:` an enum case.
    Enum,
    /// `r:` a second occurrence of an object.
    ObjectRef,
    /// `R:` a PHP reference (`&`) to an earlier value.
    Reference,
    /// A scalar, string or array in a form PHP 8 does not write.
    Other,
}

/// A value kept as the bytes it was decoded from.
///
/// It cannot be built by hand: it comes from decoding, and remembers where
/// its references (`r:` / `R:`) point so that a session can renumber them
/// when values before it change size.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    pub(crate) bytes: Vec<u8>,
    pub(crate) kind: RawKind,
    /// References inside `bytes`.
    pub(crate) refs: Vec<RefSite>,
    /// The document this came from, and its first slot number there.
    pub(crate) doc: u64,
    pub(crate) first_slot: u32,
    pub(crate) slots: u32,
}

/// One `r:<n>;` / `R:<n>;` inside a [`Raw`]: where its number is and what it
/// pointed at when decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefSite {
    pub(crate) at: usize,
    pub(crate) len: usize,
    pub(crate) target: u32,
}

impl Raw {
    /// The exact serialized bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What kind of value it is.
    pub fn kind(&self) -> RawKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_keeps_position_and_lookups_see_the_last_pair() {
        let mut a: Array = [("a", 1i64), ("b", 2)].into_iter().collect();
        assert_eq!(a.insert("a", 3i64), Some(Value::Int(1)));
        assert_eq!(a.iter().next().map(|(k, _)| k), Some(&Key::from("a")));
        a.entries.push((Key::from("b"), Value::Int(9)));
        assert_eq!(a.get("b"), Some(&Value::Int(9)));
        assert_eq!(a.remove("b"), Some(Value::Int(9)));
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn slots_count_every_value() {
        let a = Array::list([Value::Int(1), Value::Array(Array::list([1i64, 2]))]);
        assert_eq!(Value::Array(a).slots(), 5);
    }
}
