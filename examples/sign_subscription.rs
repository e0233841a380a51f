//! Signs a collector's subscription request exactly as a Shardeum collector does, verifies it
//! like the distributor does, and prints the websocket URL to connect with.
//!
//! ```text
//! cargo run --example sign_subscription -- [DISTRIBUTOR_URL] [COLLECTOR_SECRET_KEY_HEX]
//! ```
//! Without a secret key a fresh key pair is generated (and printed, so it can be allow-listed).

use std::time::{SystemTime, UNIX_EPOCH};

use firehose::core::crypto::{Crypto, KeyPair};
use firehose::core::subscription::{encode_query_value, SubscriptionRequest, SubscriptionType};

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:6100".into());
    let keys = match args.next() {
        Some(sk) => match KeyPair::from_secret_hex(&sk) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("error: collector secret key: {e}");
                std::process::exit(2);
            }
        },
        None => KeyPair::generate(),
    };
    let crypto = Crypto::default();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);

    let request = SubscriptionRequest::new(SubscriptionType::Firehose, keys.public_key(), now_ms);
    let signed = request.sign(&crypto, &keys);
    let signer = crypto
        .verify_obj(&signed)
        .expect("a request we just signed verifies");
    assert_eq!(signer, keys.public_key());

    println!("collector public key : {}", keys.public_key());
    println!("collector secret key : {}", keys.secret_key_hex());
    println!(
        "signed request       : {}",
        firehose::core::canonical::safe_stringify(&signed)
    );
    println!("verified, signer     : {signer}");
    println!(
        "connect to           : {}/?data={}",
        base.trim_end_matches('/'),
        encode_query_value(&signed)
    );
    println!("(valid for 30 s: the distributor rejects older timestamps)");
}
