//! A history reply's body: an object whose fields are JSON values (totals, tallies) or rows
//! already written as canonical JSON by the database ([`firehose_dbstore::history_json`]).
//! It is put together in canonical form once, hashed and signed as it is
//! ([`firehose_core::message::sign_canonical_object`]); rows are never parsed into a value
//! tree and serialised again.

use firehose_core::canonical::{cmp_utf16, write_str, write_value, Flavour};
use serde_json::Value;

/// One field's value.
#[derive(Debug)]
pub(super) enum Part {
    /// A JSON value, written canonically.
    Value(Value),
    /// Canonical JSON bytes, written as they are.
    Json(Vec<u8>),
}

impl From<Value> for Part {
    fn from(v: Value) -> Self {
        Part::Value(v)
    }
}

/// The fields of a reply object.
#[derive(Debug, Default)]
pub(super) struct Reply {
    fields: Vec<(&'static str, Part)>,
}

impl Reply {
    /// A reply with one field.
    pub(super) fn one(key: &'static str, part: impl Into<Part>) -> Self {
        Self::default().with(key, part)
    }

    /// Adds a field.
    pub(super) fn with(mut self, key: &'static str, part: impl Into<Part>) -> Self {
        self.fields.push((key, part.into()));
        self
    }

    /// The object in canonical form (keys sorted as JavaScript sorts them).
    pub(super) fn into_canonical(mut self) -> Vec<u8> {
        self.fields.sort_by(|a, b| cmp_utf16(a.0, b.0));
        let size: usize = self
            .fields
            .iter()
            .map(|(_, p)| match p {
                Part::Json(b) => b.len(),
                Part::Value(_) => 32,
            })
            .sum();
        let mut out = Vec::with_capacity(size + 64 + 240);
        out.push(b'{');
        for (i, (key, part)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(&mut out, key);
            out.push(b':');
            match part {
                Part::Value(v) => write_value(&mut out, v, Flavour::Safe),
                Part::Json(b) => out.extend_from_slice(b),
            }
        }
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firehose_core::canonical::safe_stringify;
    use serde_json::json;

    #[test]
    fn the_same_bytes_as_safe_stringify() {
        let rows = br#"[{"a":1},{"b":[true,null]}]"#.to_vec();
        let reply = Reply::one("totalAccounts", json!(7))
            .with("accounts", Part::Json(rows))
            .with("pid", json!(1.5));
        let want = safe_stringify(&json!({
            "accounts": [{"a": 1}, {"b": [true, null]}],
            "pid": 1.5,
            "totalAccounts": 7,
        }));
        assert_eq!(String::from_utf8(reply.into_canonical()).unwrap(), want);
        assert_eq!(Reply::default().into_canonical(), b"{}");
    }
}
