//! Canonical JSON, byte-for-byte as the JavaScript originals write it.
//!
//! Two flavours:
//!
//! * [`stable_stringify`]: `fast-stable-stringify`, the default stringifier of
//!   `@shardus/crypto-utils`. Object keys sorted by UTF-16 code units, no whitespace, strings
//!   escaped like `JSON.stringify`, numbers formatted like JavaScript's `Number#toString`.
//! * [`safe_stringify`]: `safeStringify` of `@shardeum-foundation/lib-types`, used for every
//!   data-log line and every signed message of the distributor. The same, plus the tagged values
//!   of [`crate::tagged`] (BigInt, Buffer, Uint8Array), whose inner key order is fixed.
//!
//! Parsing ([`safe_parse`]) keeps tagged values as their tag objects: the reviver of the
//! original and the tag writer here are inverses, so a parsed line stringifies back to the same
//! bytes. JavaScript numbers are IEEE doubles; integers that fit in 53 bits are written exactly,
//! larger ones and fractions go through the ECMAScript formatting of the nearest double, as
//! JavaScript would (so `12345678901234567890` hashes as `12345678901234567000`).
//!
//! ```
//! use firehose_core::canonical::{safe_parse, stable_stringify};
//!
//! let v = safe_parse(r#"{"b": 1e21, "a": [0.1, 1e-7, "tab\t"]}"#).unwrap();
//! assert_eq!(stable_stringify(&v), r#"{"a":[0.1,1e-7,"tab\t"],"b":1e+21}"#);
//! ```

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::error::Result;
use crate::jscompat;
use crate::tagged::{TAG_BUFFER, TAG_U8ARRAY};

/// Which stringifier to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavour {
    /// `fast-stable-stringify` (tag objects are ordinary objects, keys sorted).
    Stable,
    /// `safeStringify` (tag objects for Buffer / Uint8Array keep `value` before `dataType`).
    #[default]
    Safe,
}

/// Stringifies like `fast-stable-stringify`.
pub fn stable_stringify(value: &Value) -> String {
    to_string(value, Flavour::Stable)
}

/// Stringifies like `safeStringify` of `@shardeum-foundation/lib-types`.
pub fn safe_stringify(value: &Value) -> String {
    to_string(value, Flavour::Safe)
}

/// Stringifies with the given flavour.
pub fn to_string(value: &Value, flavour: Flavour) -> String {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, value, flavour);
    // Only valid UTF-8 is ever written: JSON punctuation, ASCII numbers and escaped `str`s.
    String::from_utf8(out).expect("canonical JSON is UTF-8")
}

/// Appends the canonical form of `value` to `out`.
pub fn write_value(out: &mut Vec<u8>, value: &Value, flavour: Flavour) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, flavour);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map, flavour, None),
    }
}

/// Appends the canonical form of an object, leaving out the key `skip` (used to hash an
/// object "without its `sign` field" without cloning it).
pub fn write_object(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    flavour: Flavour,
    skip: Option<&str>,
) {
    if flavour == Flavour::Safe && skip.is_none() {
        if let Some((value, tag)) = byte_tag(map) {
            out.extend_from_slice(b"{\"value\":");
            write_str(out, value);
            out.extend_from_slice(b",\"dataType\":");
            write_str(out, tag);
            out.push(b'}');
            return;
        }
    }
    out.push(b'{');
    let mut first = true;
    let mut emit = |out: &mut Vec<u8>, key: &str, value: &Value| {
        if skip == Some(key) {
            return;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, key);
        out.push(b':');
        write_value(out, value, flavour);
    };
    // serde_json's map iterates in UTF-8 byte order, which equals UTF-16 code-unit order
    // unless a key holds a character at or above U+E000 (UTF-8 lead byte >= 0xEE).
    if map.keys().any(|k| k.bytes().any(|b| b >= 0xEE)) {
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_by(|a, b| cmp_utf16(a.0, b.0));
        for (k, v) in entries {
            emit(out, k, v);
        }
    } else {
        for (k, v) in map {
            emit(out, k, v);
        }
    }
    out.push(b'}');
}

/// `{"dataType": "bb"|"u8ab", "value": "<base64>"}`: the tags whose key order is not sorted.
fn byte_tag(map: &Map<String, Value>) -> Option<(&str, &str)> {
    if map.len() != 2 {
        return None;
    }
    let tag = map.get("dataType")?.as_str()?;
    let value = map.get("value")?.as_str()?;
    (tag == TAG_BUFFER || tag == TAG_U8ARRAY).then_some((value, tag))
}

/// Compares two strings by UTF-16 code units, as JavaScript's default `Array#sort` does
/// (lone surrogates as [`crate::jscompat`] encodes them).
pub fn cmp_utf16(a: &str, b: &str) -> Ordering {
    if jscompat::has_sentinel(a) || jscompat::has_sentinel(b) {
        return jscompat::utf16_units(a).cmp(&jscompat::utf16_units(b));
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Writes a string literal escaped exactly like `JSON.stringify` (a lone surrogate, as
/// [`crate::jscompat`] encodes it, as `\udxxx`).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if jscompat::has_sentinel(s) {
        return jscompat::write_str_with_surrogates(out, s);
    }
    // serde_json escapes the same set as JSON.stringify: `"`, `\`, and control characters
    // (short forms \b \f \n \r \t, otherwise \u00xx in lowercase hex).
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

const MAX_SAFE: u64 = 1 << 53;

/// Writes a JSON number the way JavaScript prints the corresponding double.
pub fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        if u <= MAX_SAFE {
            out.extend_from_slice(u.to_string().as_bytes());
            return;
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= MAX_SAFE {
            out.extend_from_slice(i.to_string().as_bytes());
            return;
        }
    }
    // u64/i64 beyond 2^53 and all floats: format the nearest double like JavaScript.
    let f = n.as_f64().unwrap_or(f64::NAN);
    write_js_f64(out, f);
}

/// Writes a double as ECMAScript's `Number#toString` (as `JSON.stringify` would: non-finite
/// values become `null`, `-0` becomes `0`).
pub fn write_js_f64(out: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        out.extend_from_slice(b"null");
    } else if f == 0.0 {
        out.push(b'0');
    } else {
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format_finite(f).as_bytes());
    }
}

/// Parses JSON text as `safeJsonParse` would, keeping tagged values as their tag objects
/// (see [`crate::tagged`] to read them). Numbers keep full precision in the returned value;
/// the canonical writers apply JavaScript's rounding when they print. What JavaScript takes
/// and `serde_json` alone would not is taken too, and the keys `safeJsonParse` drops are
/// dropped ([`crate::jscompat`]: lone surrogates, `1e400` as `null`, nesting up to
/// [`jscompat::MAX_NESTING`], no `__proto__`, `constructor` or `prototype`).
pub fn safe_parse(text: &str) -> Result<Value> {
    safe_parse_slice(text.as_bytes())
}

/// [`safe_parse`] on bytes (e.g. a data-log line).
pub fn safe_parse_slice(bytes: &[u8]) -> Result<Value> {
    parse_within(bytes, jscompat::MAX_NESTING)
}

/// [`safe_parse_slice`] with `max_nesting` levels allowed (a signed message wraps an entry
/// of up to [`jscompat::MAX_NESTING`] levels in one more).
pub(crate) fn parse_within(bytes: &[u8], max_nesting: usize) -> Result<Value> {
    use serde::Deserialize as _;
    let text = jscompat::prepare_within(bytes, max_nesting)?;
    let mut de = serde_json::Deserializer::from_slice(&text);
    // `prepare` bounded the nesting: no deeper than node itself parses.
    de.disable_recursion_limit();
    let mut v = Value::deserialize(&mut de)?;
    de.end()?;
    if jscompat::may_have_reserved(&text) {
        jscompat::strip_reserved(&mut v);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_like_javascript() {
        let cases: &[(&str, &str)] = &[
            ("0", "0"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1.0", "1"),
            ("0.1", "0.1"),
            ("1e-7", "1e-7"),
            ("0.000001", "0.000001"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345680000", "123456789012345680000"),
            ("12345678901234567890", "12345678901234567000"),
            ("9007199254740993", "9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("9007199254740992", "9007199254740992"),
            ("1.5e300", "1.5e+300"),
            ("-2.5", "-2.5"),
        ];
        for (input, want) in cases {
            let v = safe_parse(input).unwrap();
            assert_eq!(stable_stringify(&v), *want, "input {input}");
        }
    }

    #[test]
    fn keys_sorted_by_utf16_code_units() {
        // U+FF21 (fullwidth A) is one UTF-16 unit 0xFF21; U+1F600 is the pair D83D DE00.
        // UTF-8 order puts the emoji last, UTF-16 order puts it first.
        let v = json!({"\u{FF21}": 1, "\u{1F600}": 2, "a": 3});
        assert_eq!(
            stable_stringify(&v),
            "{\"a\":3,\"\u{1F600}\":2,\"\u{FF21}\":1}"
        );
    }

    #[test]
    fn strings_escaped_like_json_stringify() {
        let v = json!("q\"b\\n\nt\tc\u{1}\u{1f}\u{7f}\u{2028}é");
        assert_eq!(
            stable_stringify(&v),
            "\"q\\\"b\\\\n\\nt\\tc\\u0001\\u001f\u{7f}\u{2028}é\""
        );
    }

    #[test]
    fn safe_flavour_orders_byte_tags() {
        let v = json!({"b": {"dataType": "bb", "value": "AQID"}, "a": {"value": "2", "dataType": "bi"}});
        assert_eq!(
            safe_stringify(&v),
            r#"{"a":{"dataType":"bi","value":"2"},"b":{"value":"AQID","dataType":"bb"}}"#
        );
        assert_eq!(
            stable_stringify(&v),
            r#"{"a":{"dataType":"bi","value":"2"},"b":{"dataType":"bb","value":"AQID"}}"#
        );
    }

    #[test]
    fn skip_key() {
        let v = json!({"a": 1, "sign": {"x": 1}, "z": 2});
        let mut out = Vec::new();
        write_object(
            &mut out,
            v.as_object().unwrap(),
            Flavour::Safe,
            Some("sign"),
        );
        assert_eq!(out, br#"{"a":1,"z":2}"#);
    }
}
