//! Property tests: canonical JSON is a parse/stringify fixed point; signatures hold and break.

use firehose_core::canonical::{safe_parse, safe_stringify, stable_stringify};
use firehose_core::crypto::{Crypto, KeyPair};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (-1e300f64..1e300).prop_map(|f| Number::from_f64(f).unwrap()),
        (-1e-3f64..1e-3).prop_map(|f| Number::from_f64(f).unwrap()),
        (0u32..1000).prop_map(|n| Number::from_f64(n as f64 / 10.0).unwrap()),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    // Tag objects as safeStringify writes them: `{dataType, value}`, byte tags value first.
    let tag = (
        prop::sample::select(vec!["bb", "u8ab", "bi", "x"]),
        prop_oneof![
            any::<String>().prop_map(Value::String),
            Just(Value::from(1))
        ],
    )
        .prop_map(|(t, v)| serde_json::json!({"dataType": t, "value": v}));
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_number().prop_map(Value::Number),
        any::<String>().prop_map(Value::String),
        tag,
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn stable_stringify_is_a_fixed_point(v in arb_json()) {
        let once = stable_stringify(&v);
        let parsed = safe_parse(&once).unwrap();
        let twice = stable_stringify(&parsed);
        prop_assert_eq!(&once, &twice);
        // Parses back to the same value up to JavaScript number rounding.
        prop_assert_eq!(stable_stringify(&safe_parse(&twice).unwrap()), twice);
        prop_assert_eq!(safe_stringify(&parsed), safe_stringify(&safe_parse(&safe_stringify(&parsed)).unwrap()));
    }

    #[test]
    fn canonicalize_gives_safe_stringify_of_any_spelling(v in arb_json()) {
        use firehose_core::canonicalize::canonicalize;
        let canonical = safe_stringify(&v);
        // The canonical text is kept as it is; a pretty-printed spelling becomes it.
        prop_assert_eq!(&canonicalize(canonical.as_bytes()).unwrap()[..], canonical.as_bytes());
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        prop_assert_eq!(&canonicalize(pretty.as_bytes()).unwrap()[..], canonical.as_bytes());
        // Compact with sorted keys: canonical except for byte tags and numbers.
        let sorted = serde_json::to_string(&v).unwrap();
        prop_assert_eq!(&canonicalize(sorted.as_bytes()).unwrap()[..], canonical.as_bytes());
    }

    #[test]
    fn sign_then_verify_and_any_flip_fails(v in arb_json(), seed in any::<[u8; 32]>(), flip in any::<prop::sample::Index>()) {
        let crypto = Crypto::default();
        let keys = KeyPair::from_seed(seed);
        let mut obj = serde_json::json!({"payload": v});
        crypto.sign_obj(&mut obj, &keys).unwrap();
        prop_assert_eq!(crypto.verify_obj(&obj).unwrap(), keys.public_key());

        // Flip one byte of the signed message text: it no longer parses, or no longer verifies.
        let text = safe_stringify(&obj).into_bytes();
        let i = flip.index(text.len());
        let mut bad = text.clone();
        bad[i] ^= 0x01;
        if let Ok(s) = std::str::from_utf8(&bad) {
            if let Ok(parsed) = safe_parse(s) {
                // A flip inside a number can land on an equal double ("1.0" vs "1.1" differ;
                // "1e0" vs "1e1" differ); only identical canonical text may still verify.
                if safe_stringify(&parsed) != safe_stringify(&obj) {
                    prop_assert!(crypto.verify_obj(&parsed).is_err(), "flip at {} verified: {}", i, s);
                }
            }
        }
    }
}
