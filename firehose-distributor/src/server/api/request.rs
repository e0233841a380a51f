//! Reading a history request body the way the original does: declared fields type-checked
//! first (`n?` optional number, `s?` optional string), then JavaScript's truthiness decides
//! which selector is present, and ranges are inclusive (`to - from + 1` rows).
//!
//! Numbers are kept exact (`i128`), so `u64::MAX` or `-1` in any field is compared, never
//! wrapped; a fraction is refused (SQLite would refuse it as a `LIMIT` or `OFFSET`).

use serde_json::Value;

use super::error::ApiError;

/// Rows per page of `/receipt` and `/originalTx`, and their widest `start`/`end` span.
pub const PAGE_SIZE: usize = 100;
/// Largest `count` and cycle span (`endCycle - startCycle`).
pub const MAX_SPAN: u64 = 100;
/// Page size and widest span of `/account` and `/transaction`.
pub const ROW_PAGE_SIZE: usize = 1000;

/// The type a field must have when present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `n?`: a JSON number.
    Number,
    /// `s?`: a JSON string.
    String,
}

/// A request body whose declared fields have the declared types.
#[derive(Debug)]
pub struct Body<'a> {
    v: &'a Value,
}

impl<'a> Body<'a> {
    /// Checks `fields` of `v` (absent is fine; `null` or another type is not).
    pub fn check(v: &'a Value, fields: &[(&str, Kind)]) -> Result<Self, ApiError> {
        for (name, kind) in fields {
            let Some(x) = v.get(*name) else { continue };
            let ok = match kind {
                Kind::Number => x.is_number(),
                Kind::String => x.is_string(),
            };
            if !ok {
                let want = match kind {
                    Kind::Number => "number",
                    Kind::String => "string",
                };
                return Err(ApiError::bad(format!(
                    "Invalid request data {name} must be, {want}"
                )));
            }
        }
        Ok(Self { v })
    }

    /// A number field, if present (`0` included: `start || start === 0`).
    pub fn num(&self, name: &str) -> Result<Option<i128>, ApiError> {
        let Some(n) = self.v.get(name).and_then(Value::as_number) else {
            return Ok(None);
        };
        if let Some(i) = n.as_i64() {
            return Ok(Some(i128::from(i)));
        }
        if let Some(u) = n.as_u64() {
            return Ok(Some(i128::from(u)));
        }
        match n.as_f64() {
            // `as` saturates: 1e300 is a very large integer, which is all it needs to be.
            Some(f) if f.fract() == 0.0 => Ok(Some(f as i128)),
            _ => Err(ApiError::bad(format!("{name} must be an integer"))),
        }
    }

    /// A number field that is present and not 0 (JavaScript's `if (count)`).
    pub fn truthy_num(&self, name: &str) -> Result<Option<i128>, ApiError> {
        Ok(self.num(name)?.filter(|n| *n != 0))
    }

    /// A string field that is present and not empty (JavaScript's `if (txId)`).
    pub fn truthy_str(&self, name: &str) -> Option<&'a str> {
        self.v
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// Rows to skip and rows to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First row (or cycle).
    pub from: u64,
    /// Last row (or cycle), inclusive.
    pub to: u64,
}

impl Span {
    /// Rows in the span (`to - from + 1`).
    pub fn rows(&self) -> u64 {
        self.to - self.from + 1
    }
}

/// `from = start`, `to = end || from`; refused unless `0 <= from <= to` and
/// `to - from <= limit`. `what` names the counters in the error, as the original does.
pub fn span(
    start: i128,
    end: Option<i128>,
    limit: u64,
    what: &str,
    too_many: impl FnOnce() -> String,
) -> Result<Span, ApiError> {
    let from = start;
    let to = end.filter(|e| *e != 0).unwrap_or(from);
    if !(from >= 0 && to >= from) {
        return Err(ApiError::bad(format!("Invalid {what} counters")));
    }
    if to - from > i128::from(limit) {
        return Err(ApiError::bad(too_many()));
    }
    // Both fit in u64 unless they are beyond it, and then nothing is there: clamp.
    let clamp = |n: i128| u64::try_from(n).unwrap_or(u64::MAX);
    let (from, to) = (clamp(from), clamp(to));
    Ok(Span {
        from,
        to: to.max(from),
    })
}

/// `count`: `1 ..= max`, with the original's messages.
pub fn count(n: i128, max: u64) -> Result<u64, ApiError> {
    if n <= 0 {
        return Err(ApiError::bad("Invalid count"));
    }
    if n > i128::from(max) {
        return Err(ApiError::bad(format!("Max count is {max}")));
    }
    Ok(n as u64)
}

/// Rows skipped before page `page` (from 1) of `size`; absent or 0 means page 1.
pub fn page_skip(page: Option<i128>, size: u64) -> Result<u64, ApiError> {
    match page {
        None | Some(0) => Ok(0),
        Some(p) if p < 1 => Err(ApiError::bad("Invalid page number")),
        Some(p) => Ok(u64::try_from(p - 1)
            .unwrap_or(u64::MAX)
            .saturating_mul(size)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spans_are_inclusive_and_checked() {
        let s = span(0, Some(100), 100, "start and end", String::new).unwrap();
        assert_eq!((s.from, s.rows()), (0, 101));
        assert!(span(0, Some(101), 100, "x", String::new).is_err());
        assert_eq!(span(7, None, 100, "x", String::new).unwrap().rows(), 1);
        assert_eq!(span(7, Some(0), 100, "x", String::new).unwrap().rows(), 1);
        assert!(span(-1, Some(3), 100, "x", String::new).is_err());
        assert!(span(5, Some(4), 100, "x", String::new).is_err());
        let max = i128::from(u64::MAX);
        let s = span(max - 50, Some(max), 100, "x", String::new).unwrap();
        assert_eq!((s.from, s.rows()), (u64::MAX - 50, 51));
        let s = span(max + 5, Some(max + 9), 100, "x", String::new).unwrap();
        assert_eq!(
            (s.from, s.rows()),
            (u64::MAX, 1),
            "beyond u64: clamped, reads nothing"
        );
    }

    #[test]
    fn numbers_types_and_truthiness() {
        let v = json!({"a": 0, "b": 1.5, "c": "5", "d": null, "e": 1e300, "f": -3, "s": ""});
        assert!(Body::check(&v, &[("c", Kind::Number)]).is_err(), "a string");
        assert!(Body::check(&v, &[("d", Kind::Number)]).is_err(), "null");
        let b = Body::check(&v, &[("a", Kind::Number), ("zz", Kind::Number)]).unwrap();
        assert_eq!(b.num("a").unwrap(), Some(0));
        assert_eq!(b.truthy_num("a").unwrap(), None);
        assert!(b.num("b").is_err());
        assert!(b.num("e").unwrap().unwrap() > i128::from(u64::MAX));
        assert_eq!(b.num("f").unwrap(), Some(-3));
        assert_eq!(b.truthy_str("s"), None);
        assert_eq!(page_skip(Some(3), 100).unwrap(), 200);
        assert_eq!(page_skip(Some(i128::MAX), 100).unwrap(), u64::MAX);
        assert!(page_skip(Some(-2), 100).is_err());
        assert!(count(0, 100).is_err() && count(101, 100).is_err());
    }
}
