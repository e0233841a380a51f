//! What JavaScript's `JSON.parse` accepts and `serde_json` does not, and what lib-types'
//! `safeJsonParse` drops, so that a line parses here exactly when it parses in the original
//! and re-serialises to the bytes its `safeStringify` would write.
//!
//! * **Reserved keys.** `safeJsonParse`'s reviver drops the keys `__proto__`, `constructor`
//!   and `prototype` at any depth; [`strip_reserved`] does the same.
//! * **Lone surrogates.** `JSON.parse` keeps `"\ud800"` as a string with a lone UTF-16
//!   surrogate, and `JSON.stringify` writes it back as `\ud800`. A Rust `String` cannot hold
//!   one, so [`prepare`] rewrites each lone surrogate escape as [`SENTINEL`] followed by a
//!   private-use character that names it (`U+10F000 + (unit - 0xD800)`), and a literal
//!   `U+10FFFF` as two sentinels. The canonical writer ([`crate::canonical::write_str`]) and
//!   the key order ([`crate::canonical::cmp_utf16`]) read that encoding back, so the bytes
//!   and the order are JavaScript's.
//! * **Numbers out of range.** `1e400` is `Infinity` in JavaScript, which `safeStringify`
//!   writes as `null`; [`prepare`] writes `null` for any number whose nearest double is not
//!   finite (`serde_json` refuses them).
//! * **Nesting.** `serde_json` stops at 128 levels; node parses and stringifies about 2,700
//!   with its default stack. [`prepare`] allows [`MAX_NESTING`] (512) and refuses deeper text
//!   before any recursive parser sees it: parsing, writing and dropping a value recurse once
//!   a level, and 512 levels stay well inside a 2 MiB thread stack even in a debug build
//!   (about 1.5 KiB a level there), on a tokio worker answering an HTTP request too.
//!
//! Non-guarantee: a string that a parser other than [`crate::canonical::safe_parse`] read
//! (no [`prepare`]) and that holds `U+10FFFF` followed by a character in
//! `U+10F000..=U+10F7FF` is written back as a lone surrogate.

use std::borrow::Cow;

use serde_json::Value;

use crate::error::{Error, Result};

/// The deepest nesting of arrays and objects accepted.
pub const MAX_NESTING: usize = 512;

/// Marks an encoded lone surrogate (or, doubled, a literal `U+10FFFF`) inside a `String`.
pub const SENTINEL: char = '\u{10FFFF}';

/// First of the 2,048 private-use characters that name a lone surrogate after [`SENTINEL`].
const SURROGATE_BASE: u32 = 0x10_F000;

/// The keys `safeJsonParse` drops.
pub const RESERVED_KEYS: [&str; 3] = ["__proto__", "constructor", "prototype"];

/// `text` ready for `serde_json`: lone surrogates and `U+10FFFF` encoded, out-of-range
/// numbers replaced by `null` (borrowed when none occur). Fails when nesting exceeds
/// [`MAX_NESTING`]; any other error is left to the JSON parser.
pub fn prepare(text: &[u8]) -> Result<Cow<'_, [u8]>> {
    prepare_within(text, MAX_NESTING)
}

/// [`prepare`] with `max_nesting` levels allowed.
pub(crate) fn prepare_within(text: &[u8], max_nesting: usize) -> Result<Cow<'_, [u8]>> {
    let mut p = Prep {
        b: text,
        i: 0,
        out: None,
        copied: 0,
        max_nesting,
    };
    p.run()?;
    Ok(match p.out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.extend_from_slice(&text[p.copied..]);
            Cow::Owned(out)
        }
    })
}

struct Prep<'a> {
    b: &'a [u8],
    i: usize,
    /// The rewritten text up to `copied`, once a first rewrite was needed.
    out: Option<Vec<u8>>,
    copied: usize,
    max_nesting: usize,
}

impl Prep<'_> {
    /// Replaces `b[from..to]` with `with` in the output.
    fn replace(&mut self, from: usize, to: usize, with: &[u8]) {
        let out = self
            .out
            .get_or_insert_with(|| Vec::with_capacity(self.b.len() + 16));
        out.extend_from_slice(&self.b[self.copied..from]);
        out.extend_from_slice(with);
        self.copied = to;
    }

    fn run(&mut self) -> Result<()> {
        let mut depth = 0usize;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'"' => self.string(),
                b'[' | b'{' => {
                    depth += 1;
                    if depth > self.max_nesting {
                        return Err(Error::TooDeep(self.max_nesting));
                    }
                    self.i += 1;
                }
                b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    self.i += 1;
                }
                b'-' | b'0'..=b'9' => self.number(),
                _ => self.i += 1,
            }
        }
        Ok(())
    }

    /// A number token; `null` in its place when its nearest double is infinite.
    fn number(&mut self) {
        let start = self.i;
        let mut exp = false;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'0'..=b'9' | b'-' | b'+' | b'.' => {}
                b'e' | b'E' => exp = true,
                _ => break,
            }
            self.i += 1;
        }
        let token = &self.b[start..self.i];
        // Without an exponent only 309 digits or more can overflow a double.
        if !exp && token.len() < 309 {
            return;
        }
        let infinite = std::str::from_utf8(token)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .is_some_and(f64::is_infinite);
        if infinite {
            self.replace(start, self.i, b"null");
        }
    }

    /// A string: lone surrogate escapes and `U+10FFFF` encoded.
    fn string(&mut self) {
        self.i += 1;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'"' => {
                    self.i += 1;
                    return;
                }
                b'\\' => self.escape(),
                // U+10FFFF as UTF-8.
                0xF4 if self.b[self.i..].starts_with(&[0xF4, 0x8F, 0xBF, 0xBF]) => {
                    let at = self.i;
                    self.i += 4;
                    let two = encoded(&[SENTINEL, SENTINEL]);
                    self.replace(at, self.i, two.as_bytes());
                }
                _ => self.i += 1,
            }
        }
    }

    fn escape(&mut self) {
        let at = self.i;
        if self.b.get(at + 1) != Some(&b'u') {
            self.i += 2;
            return;
        }
        let Some(unit) = hex4(self.b, at + 2) else {
            self.i += 2; // not an escape the parser accepts; it reports it
            return;
        };
        self.i = at + 6;
        let paired_low = (self.b.get(self.i) == Some(&b'\\')
            && self.b.get(self.i + 1) == Some(&b'u'))
        .then(|| hex4(self.b, self.i + 2))
        .flatten()
        .filter(|l| (0xDC00..=0xDFFF).contains(l));
        match unit {
            0xD800..=0xDBFF if paired_low.is_some() => {
                let low = paired_low.unwrap_or_default();
                self.i += 6;
                if unit == 0xDBFF && low == 0xDFFF {
                    let two = encoded(&[SENTINEL, SENTINEL]);
                    self.replace(at, self.i, two.as_bytes());
                }
            }
            0xD800..=0xDFFF => {
                let named =
                    char::from_u32(SURROGATE_BASE + u32::from(unit - 0xD800)).unwrap_or(SENTINEL);
                self.replace(at, self.i, encoded(&[SENTINEL, named]).as_bytes());
            }
            _ => {}
        }
    }
}

fn encoded(chars: &[char]) -> String {
    chars.iter().collect()
}

fn hex4(b: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
    u16::from_str_radix(digits, 16).ok()
}

/// Whether `s` holds the sentinel encoding (or a literal `U+10FFFF`).
pub fn has_sentinel(s: &str) -> bool {
    // U+10FFFF is F4 8F BF BF; F4 also leads U+100000..=U+10FFFF, rare enough.
    memchr::memchr(0xF4, s.as_bytes()).is_some() && s.contains(SENTINEL)
}

/// The UTF-16 code units JavaScript holds for `s`, sentinel encodings read back.
pub fn utf16_units(s: &str) -> Vec<u16> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == SENTINEL {
            match chars.clone().next() {
                Some(SENTINEL) => {
                    chars.next();
                }
                Some(n) if (SURROGATE_BASE..SURROGATE_BASE + 0x800).contains(&u32::from(n)) => {
                    chars.next();
                    // In range by the test above: 0xD800 + (0..0x800).
                    out.push(0xD800 + (u32::from(n) - SURROGATE_BASE) as u16);
                    continue;
                }
                _ => {}
            }
        }
        let mut buf = [0u16; 2];
        out.extend_from_slice(c.encode_utf16(&mut buf));
    }
    out
}

/// Writes `s` as a JSON string literal escaped like `JSON.stringify`, with lone surrogates
/// (sentinel encodings) as `\udxxx`.
pub fn write_str_with_surrogates(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let units = utf16_units(s);
    for c in char::decode_utf16(units.iter().copied()) {
        match c {
            Ok(c) => {
                let mut buf = [0u8; 4];
                let quoted =
                    serde_json::to_string(c.encode_utf8(&mut buf) as &str).unwrap_or_default();
                out.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
            }
            Err(e) => {
                out.extend_from_slice(format!("\\u{:04x}", e.unpaired_surrogate()).as_bytes())
            }
        }
    }
    out.push(b'"');
}

/// Whether `text` may hold a reserved key (cheap test before [`strip_reserved`]).
pub fn may_have_reserved(text: &[u8]) -> bool {
    memchr::memmem::find(text, b"proto").is_some()
        || memchr::memmem::find(text, b"constructor").is_some()
        || memchr::memmem::find(text, b"\\u").is_some()
}

/// Drops the [`RESERVED_KEYS`] from every object in `v`, at any depth.
pub fn strip_reserved(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for k in RESERVED_KEYS {
                map.remove(k);
            }
            map.values_mut().for_each(strip_reserved);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_reserved),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(s: &str) -> String {
        String::from_utf8(prepare(s.as_bytes()).unwrap().into_owned()).unwrap()
    }

    #[test]
    fn ordinary_text_is_borrowed() {
        let s = r#"{"a":[1,-2.5e3,"x\"\\\ud83d\ude00"],"b":1e300}"#;
        assert!(matches!(prepare(s.as_bytes()).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn infinities_become_null() {
        assert_eq!(
            prepared(r#"[1e400,-1E+400,1e-400,2]"#),
            "[null,null,1e-400,2]"
        );
        let big = format!("[{}]", "9".repeat(400));
        assert_eq!(prepared(&big), "[null]");
    }

    #[test]
    fn lone_surrogates_round_trip() {
        let p = prepared(r#""a\ud800b\uDC00\ud83d\ude00""#);
        let s: String = serde_json::from_str(&p).unwrap();
        let mut out = Vec::new();
        write_str_with_surrogates(&mut out, &s);
        assert_eq!(out, "\"a\\ud800b\\udc00\u{1F600}\"".as_bytes());
        // A literal U+10FFFF, raw or escaped, stays itself.
        let p = prepared("\"\u{10FFFF}\\udbff\\udfff\"");
        let s: String = serde_json::from_str(&p).unwrap();
        let mut out = Vec::new();
        write_str_with_surrogates(&mut out, &s);
        assert_eq!(out, "\"\u{10FFFF}\u{10FFFF}\"".as_bytes());
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert!(prepare(ok.as_bytes()).is_ok());
        let deep = format!("[{ok}]");
        assert!(matches!(prepare(deep.as_bytes()), Err(Error::TooDeep(_))));
        // Brackets inside strings do not count.
        let quoted = format!("\"{}\"", "[".repeat(5000));
        assert!(prepare(quoted.as_bytes()).is_ok());
    }

    #[test]
    fn reserved_keys_are_dropped_at_any_depth() {
        let mut v: Value = serde_json::from_str(
            r#"{"a":1,"__proto__":{},"b":[{"constructor":2,"prototype":3,"c":"__proto__"}]}"#,
        )
        .unwrap();
        strip_reserved(&mut v);
        assert_eq!(v, serde_json::json!({"a":1,"b":[{"c":"__proto__"}]}));
    }
}
