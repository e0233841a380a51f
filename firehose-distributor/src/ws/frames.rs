//! Server-to-collector websocket frames as finished bytes.
//!
//! A frame a server sends is never masked (RFC 6455 §5.1), so one message's frame is the same
//! bytes for every collector: the hub builds it once, and each session writes those shared
//! bytes to its socket (see [`crate::ws::socket`]) instead of a websocket library copying the
//! message into a buffer per connection. tungstenite formats the headers.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader};

/// A final, unmasked frame of `opcode` carrying `payload`: the header and the payload in one
/// allocation.
fn frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        is_final: true,
        opcode,
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let mut out = Vec::with_capacity(header.len(len) + payload.len());
    // Writing to a Vec cannot fail.
    let _ = header.format(len, &mut out);
    out.extend_from_slice(payload);
    out.into()
}

/// A text frame (the JSON wire form).
pub fn text(payload: &str) -> Bytes {
    frame(OpCode::Data(Data::Text), payload.as_bytes())
}

/// A binary frame (MessagePack).
pub fn binary(payload: &[u8]) -> Bytes {
    frame(OpCode::Data(Data::Binary), payload)
}

/// A close frame with `code` and `reason` (the reason is cut at a character boundary to fit
/// a control frame's 125 bytes).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let frame = Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..cut].into(),
    }));
    formatted(frame)
}

/// The reply to a collector's close frame: its code echoed (RFC 6455 §5.5.1), or an empty
/// close frame if it sent none.
pub fn close_reply(received: Option<&CloseFrame>) -> Bytes {
    formatted(Frame::close(received.map(|f| CloseFrame {
        code: f.code,
        reason: "".into(),
    })))
}

/// The reply to a ping: a pong with the same payload (at most 125 bytes: tungstenite rejects
/// longer control frames before they get here).
pub fn pong(payload: &[u8]) -> Bytes {
    formatted(Frame::pong(Bytes::copy_from_slice(payload)))
}

fn formatted(frame: Frame) -> Bytes {
    let mut out = Vec::with_capacity(frame.len());
    // Writing to a Vec cannot fail.
    let _ = frame.format(&mut out);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Parses one frame as a client would: header, then the payload that follows.
    fn parse(bytes: &[u8]) -> (FrameHeader, Vec<u8>) {
        let mut c = Cursor::new(bytes);
        let (h, len) = FrameHeader::parse(&mut c).unwrap().unwrap();
        let at = c.position() as usize;
        assert_eq!(
            bytes.len() - at,
            len as usize,
            "payload length in the header"
        );
        (h, bytes[at..].to_vec())
    }

    #[test]
    fn text_frames_of_every_length_format_parse_back() {
        for n in [0, 1, 125, 126, 65_535, 65_536, 1 << 20] {
            let s = "x".repeat(n);
            let (h, payload) = parse(&text(&s));
            assert!(h.is_final && h.mask.is_none());
            assert_eq!(h.opcode, OpCode::Data(Data::Text));
            assert_eq!(payload, s.as_bytes());
        }
        let (h, payload) = parse(&binary(&[1, 2, 3]));
        assert_eq!(h.opcode, OpCode::Data(Data::Binary));
        assert_eq!(payload, [1, 2, 3]);
    }

    #[test]
    fn close_frames_carry_the_code_and_fit_a_control_frame() {
        let (h, payload) = parse(&close(4001, "slow consumer"));
        assert!(matches!(h.opcode, OpCode::Control(_)));
        assert_eq!(&payload[..2], &4001u16.to_be_bytes());
        assert_eq!(&payload[2..], b"slow consumer");
        let long = "é".repeat(100);
        let (_, payload) = parse(&close(1001, &long));
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        let (_, payload) = parse(&close_reply(None));
        assert!(payload.is_empty());
        let (h, payload) = parse(&pong(b"hi"));
        assert!(matches!(h.opcode, OpCode::Control(_)));
        assert_eq!(payload, b"hi");
    }
}
