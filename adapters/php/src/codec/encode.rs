//! Writing values as PHP 8's `serialize()` does.

use crate::value::{Key, Raw, RawKind, Value};
use crate::{EncodeProblem, Error};

/// How references inside [`Raw`] values are written.
pub(crate) enum Remap<'a> {
    /// As decoded.
    Verbatim,
    /// Through a map from (document, old slot) to the new slot; references
    /// inside a raw value to that value itself follow it wherever it moves.
    With {
        map: &'a dyn Fn(u64, u32) -> Option<u32>,
        /// Raw values with references, and `C:` values, must not move (the
        /// document has `C:` values, whose inner slots cannot be counted).
        fixed: bool,
    },
}

/// Append `value`; `slot` is the number of slots taken so far in the
/// document and is advanced past the value.
pub(crate) fn write_value(
    out: &mut Vec<u8>,
    value: &Value,
    slot: &mut u32,
    remap: &Remap<'_>,
) -> Result<(), Error> {
    match value {
        Value::Null => out.extend_from_slice(b"N;"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"b:1;" } else { b"b:0;" }),
        Value::Int(n) => {
            out.extend_from_slice(b"i:");
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b';');
        }
        Value::Float(x) => {
            out.extend_from_slice(b"d:");
            write_float(out, *x);
            out.push(b';');
        }
        Value::Str(s) => write_string(out, s),
        Value::Array(a) => {
            out.extend_from_slice(b"a:");
            out.extend_from_slice(a.len().to_string().as_bytes());
            out.extend_from_slice(b":{");
            *slot = slot.saturating_add(1);
            for (k, v) in a.iter() {
                write_key(out, k);
                write_value(out, v, slot, remap)?;
            }
            out.push(b'}');
            return Ok(());
        }
        Value::Raw(raw) => {
            write_raw(out, raw, slot.saturating_add(1), remap)?;
            *slot = slot.saturating_add(raw.slots);
            return Ok(());
        }
    }
    *slot = slot.saturating_add(1);
    Ok(())
}

pub(crate) fn write_key(out: &mut Vec<u8>, key: &Key) {
    match key {
        Key::Int(n) => {
            out.extend_from_slice(b"i:");
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b';');
        }
        Key::Str(s) => write_string(out, s),
    }
}

fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(b"s:");
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.extend_from_slice(b":\"");
    out.extend_from_slice(s);
    out.extend_from_slice(b"\";");
}

fn write_raw(out: &mut Vec<u8>, raw: &Raw, new_first: u32, remap: &Remap<'_>) -> Result<(), Error> {
    let Remap::With { map, fixed } = remap else {
        out.extend_from_slice(&raw.bytes);
        return Ok(());
    };
    if *fixed
        && new_first != raw.first_slot
        && (raw.kind == RawKind::Custom || !raw.refs.is_empty())
    {
        return Err(Error::Encode(EncodeProblem::SerializableMoved));
    }
    let own = raw.first_slot..raw.first_slot.saturating_add(raw.slots);
    let mut from = 0;
    for site in &raw.refs {
        let target = if own.contains(&site.target) {
            Some(new_first.saturating_add(site.target - raw.first_slot))
        } else {
            map(raw.doc, site.target)
        };
        let target = target.ok_or(Error::Encode(EncodeProblem::DanglingReference))?;
        out.extend_from_slice(raw.bytes.get(from..site.at).unwrap_or_default());
        out.extend_from_slice(target.to_string().as_bytes());
        from = site.at + site.len;
    }
    out.extend_from_slice(raw.bytes.get(from..).unwrap_or_default());
    Ok(())
}

/// A float as PHP 8 writes it with `serialize_precision = -1`: the shortest
/// digits that read back to the same double (`zend_gcvt` with mode 0 and
/// precision 17): `0.1`, `100`, `-0`, `1.0E+25`, `1.0E-5`, `INF`, `NAN`.
pub(crate) fn write_float(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(b"NAN");
        return;
    }
    if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"INF" } else { b"-INF" });
        return;
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: `d.ddde<exp>`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let negative = mantissa.starts_with('-');
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    // Position of the decimal point relative to the digits, as dtoa's decpt.
    let decpt = exp + 1;
    if negative {
        out.push(b'-');
    }
    if !(-3..=17).contains(&decpt) {
        // d.dddE+x
        out.push(digits[0]);
        out.push(b'.');
        if digits.len() > 1 {
            out.extend_from_slice(&digits[1..]);
        } else {
            out.push(b'0');
        }
        out.push(b'E');
        out.push(if exp < 0 { b'-' } else { b'+' });
        out.extend_from_slice(exp.unsigned_abs().to_string().as_bytes());
    } else if decpt < 0 {
        // 0.000ddd
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', decpt.unsigned_abs() as usize));
        out.extend_from_slice(&digits);
    } else {
        let decpt = decpt as usize;
        if decpt == 0 {
            out.push(b'0');
        }
        for i in 0..decpt {
            out.push(digits.get(i).copied().unwrap_or(b'0'));
        }
        if digits.len() > decpt {
            out.push(b'.');
            out.extend_from_slice(&digits[decpt..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(x: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_are_written_as_php_8_writes_them() {
        // Expected strings: what `php -r 'echo serialize($x);'` prints (PHP 8.2).
        for (x, php) in [
            (0.1, "0.1"),
            (1e100, "1.0E+100"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1.5, "1.5"),
            (1e15, "1000000000000000"),
            (1e16, "10000000000000000"),
            (1e17, "1.0E+17"),
            (1e-5, "1.0E-5"),
            (0.0001, "0.0001"),
            (123456789012345678.0, "1.2345678901234568E+17"),
            (-2.5e-300, "-2.5E-300"),
            (5e-324, "5.0E-324"),
            (f64::MAX, "1.7976931348623157E+308"),
            (100.0, "100"),
            (0.30000000000000004, "0.30000000000000004"),
            (f64::INFINITY, "INF"),
            (f64::NEG_INFINITY, "-INF"),
            (f64::NAN, "NAN"),
        ] {
            assert_eq!(float(x), php, "{x:e}");
        }
    }
}
