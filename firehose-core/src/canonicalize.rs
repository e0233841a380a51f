//! Canonical form of a data-log line, checked cheaply.
//!
//! The archiver writes every entry with `safeStringify`, so almost every line is already
//! canonical and can be signed as it is. Older writers used plain `JSON.stringify` (keys in
//! insertion order) and other tools add spaces: those lines must be re-serialised, or the
//! signature over the raw bytes would not verify in the collector. [`canonicalize`] scans a
//! line once without allocating (no whitespace, object keys strictly ascending by UTF-16 code
//! units, integers JavaScript prints as written, strings with only the escapes
//! `JSON.stringify` writes) and falls back to parse + [`safe_stringify`]
//! only when the scan is unsure.
//!
//! ```
//! use std::borrow::Cow;
//! use firehose_core::canonicalize::canonicalize;
//!
//! assert!(matches!(canonicalize(br#"{"a":1,"b":[true,null]}"#).unwrap(), Cow::Borrowed(_)));
//! let fixed = canonicalize(br#"{"b": 1, "a": 2.50}"#).unwrap();
//! assert_eq!(&fixed[..], br#"{"a":2.5,"b":1}"#);
//! ```

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::canonical::{cmp_utf16, safe_parse_slice, safe_stringify};
use crate::error::Result;
use crate::jscompat::RESERVED_KEYS;

/// Strings up to this long are scanned byte by byte (faster than a vectorised search to set up).
const SHORT_STRING: usize = 72;

/// Nesting the fast scan follows before it leaves the line to the full parser.
const MAX_DEPTH: u32 = 64;

/// The line in canonical (`safeStringify`) form: borrowed when it already is, re-serialised
/// otherwise. Fails when the line is not JSON.
pub fn canonicalize(line: &[u8]) -> Result<Cow<'_, [u8]>> {
    if is_canonical(line) {
        return Ok(Cow::Borrowed(line));
    }
    let v = safe_parse_slice(line)?;
    let out = safe_stringify(&v).into_bytes();
    Ok(if out == line {
        Cow::Borrowed(line)
    } else {
        Cow::Owned(out)
    })
}

/// Whether `line` is certainly valid JSON in canonical form (`false` when unsure).
pub fn is_canonical(line: &[u8]) -> bool {
    if std::str::from_utf8(line).is_err() {
        return false;
    }
    let mut s = Scan { b: line, i: 0 };
    s.value(0) && s.i == line.len()
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let ok = self.peek() == Some(c);
        self.i += usize::from(ok);
        ok
    }

    fn value(&mut self, depth: u32) -> bool {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let ok = self.b[self.i..].starts_with(word);
        self.i += if ok { word.len() } else { 0 };
        ok
    }

    /// Integers of at most 15 digits (exact doubles, printed as written), no `-0`.
    fn number(&mut self) -> bool {
        let neg = self.eat(b'-');
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let digits = &self.b[start..self.i];
        let ok = match digits {
            [] => false,
            [b'0'] => !neg,
            [b'0', ..] => false,
            _ => digits.len() <= 15,
        };
        ok && !matches!(self.peek(), Some(b'.' | b'e' | b'E'))
    }

    /// A string's raw contents; `None` if it is invalid or uses an escape other than the
    /// short ones `JSON.stringify` writes (`\uXXXX` is left to the full parser).
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        loop {
            // Stop at a quote or backslash; control characters are not canonical. Short
            // strings (ids, hashes) in one byte loop, long ones with a vectorised search.
            let rest = &self.b[self.i..];
            let stop = |c: u8| c == b'"' || c == b'\\' || c < 0x20;
            let head = &rest[..rest.len().min(SHORT_STRING)];
            let at = match head.iter().position(|&c| stop(c)) {
                Some(at) => at,
                None if rest.len() > SHORT_STRING => {
                    let at = memchr::memchr2(b'"', b'\\', rest)?;
                    if rest[..at].iter().any(|&c| c < 0x20) {
                        return None;
                    }
                    at
                }
                None => return None,
            };
            self.i += at;
            match rest[at] {
                b'"' => break,
                b'\\' => {}
                _ => return None,
            }
            self.i += 1;
            match self.peek()? {
                b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                _ => return None,
            }
        }
        let s = &self.b[start..self.i];
        self.i += 1;
        Some(s)
    }

    fn array(&mut self, depth: u32) -> bool {
        if depth > MAX_DEPTH || !self.eat(b'[') {
            return false;
        }
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn object(&mut self, depth: u32) -> bool {
        if depth > MAX_DEPTH || !self.eat(b'{') {
            return false;
        }
        if self.eat(b'}') {
            return true;
        }
        let mut prev: Option<&[u8]> = None;
        let mut keys = 0usize;
        // `safeStringify` writes a Buffer / Uint8Array tag `{"value":<string>,"dataType":
        // "bb"|"u8ab"}` value first; every other object (BigInt tags included) sorted.
        let mut tag: Option<&[u8]> = None;
        let mut value_is_string = false;
        let mut value_first = false;
        loop {
            let Some(key) = self.string() else {
                return false;
            };
            // Escapes in keys are rare: leave their order to the full parser; so are the keys
            // `safeJsonParse` drops.
            if key.contains(&b'\\') || RESERVED_KEYS.iter().any(|r| r.as_bytes() == key) {
                return false;
            }
            let sorted = prev.is_none_or(|p| key_order(p, key) == Ordering::Less);
            let tag_order = keys == 1 && prev == Some(b"value") && key == b"dataType";
            if !sorted && !tag_order {
                return false;
            }
            value_first |= tag_order;
            prev = Some(key);
            keys += 1;
            if !self.eat(b':') {
                return false;
            }
            let at = self.i;
            if !self.value(depth) {
                return false;
            }
            let raw = &self.b[at..self.i];
            let is_string = raw.first() == Some(&b'"');
            match key {
                b"dataType" => tag = is_string.then(|| &raw[1..raw.len() - 1]),
                b"value" => value_is_string = is_string,
                _ => {}
            }
            if self.eat(b'}') {
                let byte_tag = keys == 2 && value_is_string && matches!(tag, Some(b"bb" | b"u8ab"));
                return byte_tag == value_first;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }
}

/// Keys by UTF-16 code units (byte order for ASCII, which is the same).
fn key_order(a: &[u8], b: &[u8]) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(a), Ok(b)) => cmp_utf16(a, b),
        _ => Ordering::Equal, // not reached: the line is UTF-8; Equal means "unsure"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(line: &str) -> String {
        String::from_utf8(canonicalize(line.as_bytes()).unwrap().into_owned()).unwrap()
    }

    #[test]
    fn canonical_lines_are_borrowed() {
        for line in [
            r#"{"a":1,"b":{"c":[1,-2,0,"x\"y\\z\n"],"d":false},"e":null}"#,
            r#"{"A":1,"_":2,"a":3}"#,
            r#"{"é":1,"𝒳":2,"ｚ":3}"#,
            // Tags: BigInt sorted, Buffer / Uint8Array value first (the archiver's receipts).
            r#"{"balance":{"dataType":"bi","value":"de0b6b3a7640000"},"n":1}"#,
            r#"{"code":{"value":"AAE=","dataType":"bb"},"x":[{"value":"","dataType":"u8ab"}]}"#,
            r#"{"dataType":"bb","value":1}"#,
            r#"{"dataType":"bb","value":"AAE=","z":1}"#,
            r#"{"dataType":"x","value":"AAE="}"#,
            "[]",
            "{}",
            r#""plain""#,
        ] {
            assert!(is_canonical(line.as_bytes()), "{line}");
            assert!(matches!(
                canonicalize(line.as_bytes()).unwrap(),
                Cow::Borrowed(_)
            ));
        }
    }

    #[test]
    fn other_lines_are_rewritten_as_safe_stringify_writes_them() {
        assert_eq!(
            fixed(r#"{"b": 1, "a": [1.0, 2e3]}"#),
            r#"{"a":[1,2000],"b":1}"#
        );
        assert_eq!(fixed(r#"{"a":"\u0041\/"}"#), r#"{"a":"A/"}"#);
        assert_eq!(
            fixed(r#"{"n":12345678901234567890}"#),
            r#"{"n":12345678901234567000}"#
        );
        assert_eq!(fixed(r#"{"n":-0}"#), r#"{"n":0}"#);
        assert_eq!(
            fixed(r#"{"a":1,"a":2}"#),
            r#"{"a":2}"#,
            "the last duplicate wins"
        );
        // Supplementary characters sort before U+FF5A by UTF-16 units, after it by code point.
        assert_eq!(fixed(r#"{"ｚ":1,"𝒳":2}"#), r#"{"𝒳":2,"ｚ":1}"#);
        // Tagged values keep `value` before `dataType` (already canonical: borrowed).
        let tag = r#"{"b":{"value":"AAE=","dataType":"bb"}}"#;
        assert_eq!(fixed(tag), tag);
        // Sorted is not canonical for a Buffer tag.
        assert_eq!(fixed(r#"{"b":{"dataType":"bb","value":"AAE="}}"#), tag);
        let u8a = r#"{"b":{"value":"AAE=","dataType":"u8ab"}}"#;
        assert_eq!(fixed(r#"{"b":{"dataType":"u8ab","value":"AAE="}}"#), u8a);
        // Value-first is only for byte tags with a string value and nothing else.
        assert_eq!(
            fixed(r#"{"value":"1","dataType":"bi"}"#),
            r#"{"dataType":"bi","value":"1"}"#
        );
        assert_eq!(
            fixed(r#"{"value":1,"dataType":"bb"}"#),
            r#"{"dataType":"bb","value":1}"#
        );
        assert_eq!(
            fixed(r#"{"value":"AAE=","dataType":"bb","z":1}"#),
            r#"{"dataType":"bb","value":"AAE=","z":1}"#
        );
        assert!(canonicalize(b"{\"a\":").is_err());
        assert!(canonicalize(b"not json").is_err());
        assert!(!is_canonical(b"{\"a\":1} "));
        assert!(!is_canonical(&[b'"', 0xff, b'"']));
    }

    #[test]
    fn deep_nesting_goes_to_the_full_parser() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(!is_canonical(deep.as_bytes()));
        assert_eq!(fixed(&deep), deep);
    }
}
