//! Every case of `tests/data/shardus-crypto.json`, made with the JavaScript libraries the
//! originals use (@shardus/crypto-utils, @shardeum-foundation/lib-types).

use firehose_core::canonical::{safe_parse, safe_stringify, stable_stringify};
use firehose_core::crypto::{Crypto, HashKey, KeyPair};
use firehose_core::tagged;
use serde_json::{json, Value};

fn vectors() -> Value {
    let text = include_str!("data/shardus-crypto.json");
    serde_json::from_str(text).unwrap()
}

fn crypto(v: &Value) -> Crypto {
    Crypto::new(HashKey::from_hex(v["hashKey"].as_str().unwrap()).unwrap())
}

#[test]
fn default_hash_key_matches_vectors() {
    let v = vectors();
    assert_eq!(
        HashKey::default(),
        HashKey::from_hex(v["hashKey"].as_str().unwrap()).unwrap()
    );
}

#[test]
fn keys_derive_from_seeds() {
    let v = vectors();
    for k in v["keys"].as_array().unwrap() {
        let seed: [u8; 32] = hex::decode(k["seed"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let kp = KeyPair::from_seed(seed);
        assert_eq!(kp.public_key().to_hex(), k["publicKey"].as_str().unwrap());
        assert_eq!(kp.secret_key_hex(), k["secretKey"].as_str().unwrap());
        let again = KeyPair::from_secret_hex(k["secretKey"].as_str().unwrap()).unwrap();
        assert_eq!(again.public_key(), kp.public_key());
    }
}

#[test]
fn hashes() {
    let v = vectors();
    let c = crypto(&v);
    let cases = v["hashes"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for h in cases {
        let input = h["input"].as_str().unwrap();
        assert_eq!(
            c.hash_hex(input.as_bytes()),
            h["hash"].as_str().unwrap(),
            "input {input:?}"
        );
    }
}

#[test]
fn objects_stringify_and_hash() {
    let v = vectors();
    let c = crypto(&v);
    for o in v["objects"].as_array().unwrap() {
        let obj = &o["object"];
        let want = o["stringified"].as_str().unwrap();
        assert_eq!(stable_stringify(obj), want);
        assert_eq!(safe_stringify(obj), want);
        assert_eq!(c.hash_obj(obj), o["hash"].as_str().unwrap());
        // And from the text itself (numbers round-trip through JS formatting).
        assert_eq!(stable_stringify(&safe_parse(want).unwrap()), want);
    }
}

#[test]
fn signed_objects_verify() {
    let v = vectors();
    let c = crypto(&v);
    for s in v["signed"].as_array().unwrap() {
        assert!(s["valid"].as_bool().unwrap());
        let owner = c.verify_obj(&s["signed"]).expect("vector must verify");
        assert_eq!(
            owner.to_hex(),
            s["signed"]["sign"]["owner"].as_str().unwrap()
        );
    }
}

#[test]
fn signing_reproduces_vectors() {
    // Ed25519 is deterministic: signing the same object with the same key gives the same sig.
    let v = vectors();
    let c = crypto(&v);
    let keys: Vec<KeyPair> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| KeyPair::from_secret_hex(k["secretKey"].as_str().unwrap()).unwrap())
        .collect();
    for s in v["signed"].as_array().unwrap() {
        let signed = &s["signed"];
        let owner = signed["sign"]["owner"].as_str().unwrap();
        let kp = keys
            .iter()
            .find(|k| k.public_key().to_hex() == owner)
            .unwrap();
        let mut fresh = signed.clone();
        fresh.as_object_mut().unwrap().remove("sign");
        c.sign_obj(&mut fresh, kp).unwrap();
        assert_eq!(&fresh, signed);
    }
}

#[test]
fn tampered_objects_fail() {
    let v = vectors();
    let c = crypto(&v);
    let cases = v["tampered"].as_array().unwrap();
    assert!(cases.len() >= 9);
    for t in cases {
        assert!(!t["valid"].as_bool().unwrap());
        assert!(
            c.verify_obj(&t["signed"]).is_err(),
            "tampered case accepted: {}",
            t["why"]
        );
    }
}

#[test]
fn safe_stringify_vectors() {
    let v = vectors();
    let cases = v["safeStringify"].as_array().unwrap();
    for s in cases {
        let want = s["output"].as_str().unwrap();
        let parsed = safe_parse(want).unwrap();
        assert_eq!(safe_stringify(&parsed), want, "{}", s["note"]);
    }
    // Built from typed values, not parsed text.
    let first = json!({"a": tagged::buffer(&[1, 2, 3]), "b": tagged::bigint_from_u128(2)});
    assert_eq!(safe_stringify(&first), cases[0]["output"].as_str().unwrap());
    let second = json!({"list": [null, "x"], "n": null, "u": tagged::u8array(&[255, 0])});
    assert_eq!(
        safe_stringify(&second),
        cases[1]["output"].as_str().unwrap()
    );
}
