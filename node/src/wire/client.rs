//! Calls to other hosts: one request and one response per exchange, every connect and every
//! exchange under a timeout (a connect to a crashed host never returns on its own). A `Pool`
//! keeps idle connections per host, so steady traffic does not open a connection (and use up an
//! ephemeral port) per request, and stops dialling a host for a while after a connect to it
//! timed out or after 16 refused in a row (turmoil 0.7.2 never frees the port of a connect that
//! got no SYN-ACK, so dialling a crashed, restarting or partitioned host in a loop would exhaust
//! the ephemeral ports).

use super::frame::{codec, decode, encode, WireError};
use super::message::{Envelope, Response};
use futures::{SinkExt, StreamExt};
use shardstorm_faults::LockExt;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Timeouts and limits of one call.
#[derive(Clone, Copy, Debug)]
pub struct CallTimeouts {
    pub connect: Duration,
    pub request: Duration,
    pub max_frame_bytes: usize,
}

type Connection = Framed<turmoil::net::TcpStream, LengthDelimitedCodec>;

/// Idle connections per destination host.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<BTreeMap<(String, u16), Vec<Connection>>>,
    /// Hosts whose last connect timed out, and until when they are not dialled again.
    unreachable: Mutex<BTreeMap<(String, u16), tokio::time::Instant>>,
    /// Consecutive refused connects per host.
    refused: Mutex<BTreeMap<(String, u16), u32>>,
    /// At most `MAX_DIALS_PER_HOST` connects in flight per host; later callers wait.
    dials: Mutex<BTreeMap<(String, u16), std::sync::Arc<tokio::sync::Semaphore>>>,
}

/// Connects in flight per host at most.
const MAX_DIALS_PER_HOST: usize = 4;

/// How long a host whose connect timed out is not dialled again, in connect timeouts.
const UNREACHABLE_FOR: u32 = 2;

/// Refused connects in a row after which a host is not dialled for a while.
const REFUSALS_BEFORE_PAUSE: u32 = 16;

/// At most this many idle connections are kept per host.
const MAX_IDLE_PER_HOST: usize = 4;

impl Pool {
    fn take(&self, key: &(String, u16)) -> Option<Connection> {
        self.idle.lock_ok().get_mut(key).and_then(Vec::pop)
    }

    fn put(&self, key: (String, u16), conn: Connection) {
        let mut idle = self.idle.lock_ok();
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE_PER_HOST {
            list.push(conn);
        }
    }

    /// Sends `envelope` to `host:port` over an idle connection if there is one (retrying once
    /// on a fresh connection if the idle one turned out dead), else over a new one.
    pub async fn call(
        &self,
        host: &str,
        port: u16,
        envelope: &Envelope,
        t: CallTimeouts,
    ) -> Result<Response, WireError> {
        let key = (host.to_string(), port);
        let bytes = encode(envelope, t.max_frame_bytes)?;
        if let Some(mut conn) = self.take(&key) {
            if let Ok(response) = exchange(&mut conn, &bytes, host, t).await {
                self.put(key, conn);
                return Ok(response);
            }
        }
        let mut conn = self.dial(&key, t).await?;
        let response = exchange(&mut conn, &bytes, host, t).await?;
        self.put(key, conn);
        Ok(response)
    }

    /// Connects, unless the host recently timed out.
    async fn dial(&self, key: &(String, u16), t: CallTimeouts) -> Result<Connection, WireError> {
        let slots = self
            .dials
            .lock_ok()
            .entry(key.clone())
            .or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_DIALS_PER_HOST)))
            .clone();
        let _slot = slots.acquire_owned().await.map_err(|_| WireError::Closed)?;
        let now = tokio::time::Instant::now();
        let blocked = self
            .unreachable
            .lock_ok()
            .get(key)
            .is_some_and(|u| *u > now);
        if blocked {
            return Err(WireError::ConnectTimeout(key.0.clone()));
        }
        let result = connect(&key.0, key.1, t).await;
        if matches!(result, Err(WireError::ConnectTimeout(_)))
            || self.refused_too_often(key, &result)
        {
            let until = tokio::time::Instant::now() + t.connect * UNREACHABLE_FOR;
            self.unreachable.lock_ok().insert(key.clone(), until);
        }
        result
    }

    /// Counts consecutive refused connects to a host; true (and the count starts over) once
    /// there were [`REFUSALS_BEFORE_PAUSE`]. A refused connect leaks its port in turmoil too
    /// and fails at once, so a retry loop would otherwise use up every ephemeral port within
    /// seconds.
    fn refused_too_often(
        &self,
        key: &(String, u16),
        result: &Result<Connection, WireError>,
    ) -> bool {
        let mut refused = self.refused.lock_ok();
        if !matches!(result, Err(WireError::Connect(..))) {
            refused.remove(key);
            return false;
        }
        let count = refused.entry(key.clone()).or_insert(0);
        *count += 1;
        if *count < REFUSALS_BEFORE_PAUSE {
            return false;
        }
        refused.remove(key);
        true
    }
}

async fn connect(host: &str, port: u16, t: CallTimeouts) -> Result<Connection, WireError> {
    let connect = turmoil::net::TcpStream::connect((host, port));
    match tokio::time::timeout(t.connect, connect).await {
        Err(_) => Err(WireError::ConnectTimeout(host.to_string())),
        Ok(Err(e)) => Err(WireError::Connect(host.to_string(), e.to_string())),
        Ok(Ok(stream)) => Ok(Framed::new(stream, codec(t.max_frame_bytes))),
    }
}

async fn exchange(
    conn: &mut Connection,
    request: &[u8],
    host: &str,
    t: CallTimeouts,
) -> Result<Response, WireError> {
    let round_trip = async {
        conn.send(bytes::Bytes::copy_from_slice(request))
            .await
            .map_err(|e| WireError::Io(e.to_string()))?;
        match conn.next().await {
            None => Err(WireError::Closed),
            Some(Err(e)) => Err(WireError::Io(e.to_string())),
            Some(Ok(frame)) => decode::<Response>(&frame, t.max_frame_bytes),
        }
    };
    tokio::time::timeout(t.request, round_trip)
        .await
        .map_err(|_| WireError::Timeout(host.to_string()))?
}

/// One call on a fresh connection (clients without a pool).
pub async fn call(
    host: &str,
    port: u16,
    envelope: &Envelope,
    t: CallTimeouts,
) -> Result<Response, WireError> {
    let bytes = encode(envelope, t.max_frame_bytes)?;
    let mut conn = connect(host, port, t).await?;
    exchange(&mut conn, &bytes, host, t).await
}
