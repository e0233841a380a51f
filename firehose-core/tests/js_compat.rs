//! Lines that JavaScript's `JSON.parse` takes and `serde_json` alone does not, and keys that
//! lib-types' `safeJsonParse` drops: canonicalised to exactly what `safeStringify` writes
//! (vectors made with the JS library: `tests/data/js-compat.gen.js`), or refused where
//! the original throws.

use firehose_core::canonicalize::canonicalize;
use serde_json::Value;

#[test]
fn lines_canonicalise_as_lib_types_does() {
    let text = include_str!("data/js-compat.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 15);
    // The readers parse on threads with 2 MiB stacks, as tokio's workers have.
    let worker = std::thread::Builder::new().stack_size(2 << 20);
    let vectors = vectors.clone();
    worker
        .spawn(move || {
            for v in &vectors {
                let name = v["name"].as_str().unwrap();
                let line = v["line"].as_str().unwrap();
                let got = canonicalize(line.as_bytes());
                match v["canonical"].as_str() {
                    Some(want) => {
                        let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                        assert_eq!(
                            String::from_utf8_lossy(&got),
                            want,
                            "{name}: not what safeStringify writes"
                        );
                    }
                    None => assert!(got.is_err(), "{name}: the original refuses it"),
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
