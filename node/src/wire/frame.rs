//! Framing and encoding: `tokio_util`'s length-delimited codec with a size cap (checked before
//! a frame's buffer is reserved), and `postcard` with a size limit; a hostile length prefix
//! inside a message cannot allocate unbounded memory either (postcard gives no size hint for a
//! sequence longer than the input left, and serde caps preallocation).

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

fn too_large(len: usize, limit: usize) -> WireError {
    WireError::Malformed(format!(
        "message of {len} bytes exceeds the limit of {limit}"
    ))
}

/// Encodes a message into a buffer of exactly its size (measured first, so a message over
/// `limit` bytes is an error before anything is allocated).
pub fn encode<T: Serialize>(value: &T, limit: usize) -> Result<Vec<u8>, WireError> {
    let malformed = |e: postcard::Error| WireError::Malformed(e.to_string());
    let size = postcard::experimental::serialized_size(value).map_err(malformed)?;
    if size > limit {
        return Err(too_large(size, limit));
    }
    postcard::to_extend(value, Vec::with_capacity(size)).map_err(malformed)
}

/// Decodes a message, rejecting trailing bytes and anything over `limit`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, WireError> {
    if bytes.len() > limit {
        return Err(too_large(bytes.len(), limit));
    }
    let what = || {
        let name = std::any::type_name::<T>();
        name.rsplit("::").next().unwrap_or(name)
    };
    let (value, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| WireError::Malformed(format!("{}: {e}", what())))?;
    if !rest.is_empty() {
        return Err(WireError::Malformed(format!(
            "{}: {} trailing bytes",
            what(),
            rest.len()
        )));
    }
    Ok(value)
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
        // A length prefix claiming 2^63 bytes (a varint) must not allocate.
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(matches!(
            decode::<Vec<u8>>(&huge, 1024),
            Err(WireError::Malformed(_))
        ));
        // Over the limit, both ways.
        assert_eq!(
            encode(&vec![0u8; 2000], 1024),
            Err(WireError::Malformed(
                "message of 2002 bytes exceeds the limit of 1024".into()
            ))
        );
        assert!(matches!(
            decode::<Vec<u8>>(&[0u8; 1025], 1024),
            Err(WireError::Malformed(_))
        ));
    }
}
