//! One request, one connection: connect under a timeout (a connect to a crashed host never
//! returns on its own), send one frame, read one frame, all under a request timeout.

use super::frame::{codec, decode, encode, WireError};
use super::message::{Envelope, Response};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_util::codec::Framed;

/// Timeouts and limits of one call.
#[derive(Clone, Copy, Debug)]
pub struct CallTimeouts {
    pub connect: Duration,
    pub request: Duration,
    pub max_frame_bytes: usize,
}

/// Sends `envelope` to `host:port` and returns the decoded response.
pub async fn call(host: &str, port: u16, envelope: &Envelope, t: CallTimeouts) -> Result<Response, WireError> {
    let connect = turmoil::net::TcpStream::connect((host, port));
    let stream = match tokio::time::timeout(t.connect, connect).await {
        Err(_) => return Err(WireError::ConnectTimeout(host.to_string())),
        Ok(Err(e)) => return Err(WireError::Connect(host.to_string(), e.to_string())),
        Ok(Ok(s)) => s,
    };
    let mut framed = Framed::new(stream, codec(t.max_frame_bytes));
    let exchange = async {
        let bytes = encode(envelope, t.max_frame_bytes)?;
        framed.send(bytes::Bytes::from(bytes)).await.map_err(|e| WireError::Io(e.to_string()))?;
        match framed.next().await {
            None => Err(WireError::Closed),
            Some(Err(e)) => Err(WireError::Io(e.to_string())),
            Some(Ok(frame)) => decode::<Response>(&frame, t.max_frame_bytes),
        }
    };
    tokio::time::timeout(t.request, exchange).await.map_err(|_| WireError::Timeout(host.to_string()))?
}
