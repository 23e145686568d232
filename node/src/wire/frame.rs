//! Framing and encoding: `tokio_util`'s length-delimited codec with a size cap, and bincode with
//! a size limit so a hostile length prefix cannot allocate unbounded memory.

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};
use tokio_util::codec::LengthDelimitedCodec;

/// Errors of the transport and the encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("connect to {0} timed out")]
    ConnectTimeout(String),
    #[error("request to {0} timed out")]
    Timeout(String),
    #[error("i/o error: {0}")]
    Io(String),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("connection closed before a response")]
    Closed,
}

impl WireError {
    /// Transport errors (connection, timeout) are retryable; a malformed message is not.
    pub fn is_transport(&self) -> bool {
        !matches!(self, WireError::Malformed(_))
    }
}

fn options(limit: usize) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(limit as u64)
}

/// Encodes a message.
pub fn encode<T: Serialize>(value: &T, limit: usize) -> Result<Vec<u8>, WireError> {
    options(limit)
        .serialize(value)
        .map_err(|e| WireError::Malformed(e.to_string()))
}

/// Decodes a message, rejecting trailing bytes and anything over `limit`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, WireError> {
    options(limit)
        .reject_trailing_bytes()
        .deserialize(bytes)
        .map_err(|e| WireError::Malformed(e.to_string()))
}

/// The frame codec: a 4-byte big-endian length prefix, frames up to `max_frame_bytes`.
pub fn codec(max_frame_bytes: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(max_frame_bytes)
        .new_codec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    #[test]
    fn oversized_frames_are_rejected_by_the_codec() {
        let mut codec = codec(16);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 200, 1, 2, 3][..]);
        assert!(codec.decode(&mut buf).is_err());
    }

    #[test]
    fn garbage_and_trailing_bytes_are_malformed() {
        let ok = encode(&(1u32, "x".to_string()), 1024).unwrap();
        assert_eq!(
            decode::<(u32, String)>(&ok, 1024).unwrap(),
            (1, "x".to_string())
        );
        let mut trailing = ok.clone();
        trailing.push(9);
        assert!(matches!(
            decode::<(u32, String)>(&trailing, 1024),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode::<(u32, String)>(&[0xff; 3], 1024),
            Err(WireError::Malformed(_))
        ));
        // A length prefix claiming 2^60 bytes must not allocate.
        let huge = [4u8, 0, 0, 0, 0, 0, 0, 16];
        assert!(matches!(
            decode::<Vec<u8>>(&huge, 1024),
            Err(WireError::Malformed(_))
        ));
    }
}
