//! Outport frames: envelope decoding (protobuf and JSON) and block-header decoding never panic.
#![no_main]
use firehose_ws_connector::codec::{decode_block, Marshaller};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for m in [Marshaller::Protobuf, Marshaller::Json] {
        if let Ok(msg) = m.decode(data) {
            let _ = decode_block(&msg.payload);
        }
    }
    let _ = decode_block(data);
});
