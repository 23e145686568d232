//! Property tests of the wire decoder (the server's path: frame codec, then envelope, then
//! request; and the client's: response): arbitrary bytes, truncated and mutated valid frames,
//! oversized length prefixes and valid-length frames with garbage payloads always give a typed
//! error or a valid message, never a panic, and never an allocation sized by a length prefix
//! instead of the input (a counting allocator measures the largest allocation while decoding).

use super::frame::{codec, decode, encode, WireError};
use super::message::{Envelope, Request, Response, ServiceError};
use super::signing::node_keypair;
use crate::blob::{BlobMetadata, SliverPairHashes};
use crate::types::{BlobId, NodeId, ShardIndex, SliverType};
use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tokio_util::codec::Decoder;

/// The frame cap of these tests (the node's default is 64 MiB).
const MAX_FRAME: usize = 1 << 20;

/// Records the largest single allocation of the current thread while [`largest_allocation`]
/// runs; otherwise the system allocator, unchanged.
struct Counting;

thread_local! {
    static LARGEST: Cell<Option<usize>> = const { Cell::new(None) };
}

// SAFETY: every call is forwarded to `System` unchanged; the bookkeeping only reads and writes
// a thread-local `Cell` with a const initializer, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is passed on to `System`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| {
        if let Some(max) = l.get() {
            l.set(Some(max.max(size)));
        }
    });
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the largest allocation it made on this thread.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(Some(0)));
    let r = f();
    let max = LARGEST.with(|l| l.replace(None)).unwrap_or(0);
    (r, max)
}

/// The most a decode of `input` bytes may allocate at once: a small multiple of the input
/// (the largest element type, `(BlobId, Vec<u8>)`, is 56 bytes per encoded byte at worst).
fn allocation_bound(input: usize) -> usize {
    64 * input + 4096
}

/// What the server makes of one frame: the envelope and the request, or why not.
type Decoded = Result<(Envelope, Request), WireError>;

/// What the server makes of one frame: envelope, then request.
fn decode_request(frame: &[u8]) -> Decoded {
    let env = decode::<Envelope>(frame, MAX_FRAME)?;
    let req = decode::<Request>(&env.payload, MAX_FRAME)?;
    Ok((env, req))
}

/// Feeds `stream` to the frame codec and decodes every complete frame as a request, as the
/// server's connection loop does; stops at the first codec error (the connection closes) or
/// when the rest is an incomplete frame. Returns the decoded frames and whether the codec
/// failed. Checks the allocation bound on every step.
fn serve(stream: &[u8]) -> (Vec<Decoded>, bool) {
    let mut codec = codec(MAX_FRAME);
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    loop {
        let (step, largest) = largest_allocation(|| match codec.decode(&mut buf) {
            Ok(Some(frame)) => Ok(Some(decode_request(&frame))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        });
        // The codec may reserve room for one frame of at most `MAX_FRAME` bytes.
        let bound = allocation_bound(stream.len()).max(MAX_FRAME + 64);
        assert!(largest <= bound, "allocated {largest} > {bound}");
        match step {
            Ok(Some(decoded)) => frames.push(decoded),
            Ok(None) => return (frames, false),
            Err(_) => return (frames, true),
        }
    }
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
    out.to_vec()
}

fn id(b: u8) -> BlobId {
    BlobId([b; 32])
}

fn metadata(n: u16) -> BlobMetadata {
    BlobMetadata {
        unencoded_length: 100,
        n_shards: n,
        hashes: vec![
            SliverPairHashes {
                primary: [1; 32],
                secondary: [2; 32],
            };
            usize::from(n)
        ],
    }
}

fn sliver_type() -> impl Strategy<Value = SliverType> {
    prop_oneof![Just(SliverType::Primary), Just(SliverType::Secondary)]
}

fn request() -> impl Strategy<Value = Request> {
    let blob = any::<u8>().prop_map(id);
    prop_oneof![
        (
            any::<u16>(),
            sliver_type(),
            blob.clone(),
            any::<u32>(),
            any::<u64>()
        )
            .prop_map(|(s, ty, start, count, epoch)| Request::SyncShard {
                shard: ShardIndex(s),
                ty,
                start,
                count,
                epoch,
            }),
        blob.clone().prop_map(|blob| Request::GetMetadata { blob }),
        (blob.clone(), sliver_type(), any::<u64>())
            .prop_map(|(blob, ty, epoch)| Request::GetRecoverySymbols { blob, ty, epoch }),
        (
            1u16..40,
            proptest::collection::vec(
                (
                    any::<u16>(),
                    sliver_type(),
                    proptest::collection::vec(any::<u8>(), 0..40)
                ),
                0..4
            )
        )
            .prop_map(|(n, slivers)| Request::StoreBlob {
                metadata: metadata(n),
                slivers: slivers
                    .into_iter()
                    .map(|(s, ty, b)| (ShardIndex(s), ty, b))
                    .collect(),
            }),
        blob.prop_map(|blob| Request::ReadSlivers { blob }),
    ]
}

/// A signed (by a node) or unsigned (by a client) envelope around `request`, framed.
fn valid_frame(request: &Request, signed: bool) -> Vec<u8> {
    let payload = encode(request, MAX_FRAME).expect("encodes");
    let envelope = if signed {
        node_keypair(7, NodeId(3)).seal(NodeId(3), payload)
    } else {
        Envelope {
            sender: None,
            payload,
            signature: None,
        }
    };
    framed(&encode(&envelope, MAX_FRAME).expect("encodes"))
}

fn config() -> Config {
    Config {
        cases: 2_000,
        rng_seed: RngSeed::Fixed(14),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(stream in proptest::collection::vec(any::<u8>(), 0..600)) {
        serve(&stream);
        let (_, largest) = largest_allocation(|| decode::<Response>(&stream, MAX_FRAME).ok());
        prop_assert!(largest <= allocation_bound(stream.len()), "{largest}");
    }

    #[test]
    fn valid_frames_round_trip_and_truncations_wait(
        request in request(),
        signed in any::<bool>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let frame = valid_frame(&request, signed);
        let (frames, failed) = serve(&frame);
        prop_assert!(!failed);
        prop_assert_eq!(frames.len(), 1);
        let (_, decoded) = frames[0].clone().expect("a valid frame decodes");
        prop_assert_eq!(&decoded, &request);
        // A truncated frame is incomplete: no frame, no error, until the rest arrives.
        let at = cut.index(frame.len());
        let (frames, failed) = serve(&frame[..at]);
        prop_assert!(frames.is_empty() && !failed, "cut at {} of {}", at, frame.len());
        // The body alone, cut anywhere, is a typed error.
        let body = &frame[4..];
        let at = cut.index(body.len());
        prop_assert!(decode_request(&body[..at]).is_err());
    }

    #[test]
    fn mutated_frames_are_errors_or_messages(
        request in request(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let mut frame = valid_frame(&request, true);
        for (at, mask) in flips {
            let i = 4 + at.index(frame.len() - 4);
            frame[i] ^= mask;
        }
        let (frames, failed) = serve(&frame);
        prop_assert!(!failed);
        prop_assert_eq!(frames.len(), 1);
    }

    #[test]
    fn garbage_payloads_of_a_valid_length_are_typed_errors(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        copies in 1usize..4,
    ) {
        let stream: Vec<u8> = (0..copies).flat_map(|_| framed(&payload)).collect();
        let (frames, failed) = serve(&stream);
        prop_assert!(!failed);
        prop_assert_eq!(frames.len(), copies);
        for frame in frames {
            if let Err(e) = frame {
                prop_assert!(matches!(e, WireError::Malformed(_)), "{:?}", e);
            }
        }
    }

    #[test]
    fn oversized_length_prefixes_fail_before_allocating(
        len in (MAX_FRAME as u32 + 1)..=u32::MAX,
        rest in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut stream = len.to_be_bytes().to_vec();
        stream.extend_from_slice(&rest);
        let mut codec = codec(MAX_FRAME);
        let mut buf = BytesMut::from(&stream[..]);
        let (result, largest) = largest_allocation(|| codec.decode(&mut buf));
        prop_assert!(result.is_err());
        prop_assert!(largest <= 4096, "{largest}");
    }

    #[test]
    fn hostile_inner_length_prefixes_do_not_allocate(
        prefix in any::<u64>(),
        tail in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        // An envelope whose `payload` claims `prefix` bytes (a varint), and a sync page
        // claiming `prefix` slivers.
        let mut env = vec![0u8];
        env.extend_from_slice(&varint(prefix));
        env.extend_from_slice(&tail);
        let mut page = vec![0u8];
        page.extend_from_slice(&varint(prefix));
        page.extend_from_slice(&tail);
        for bytes in [&env, &page] {
            let (_, largest) = largest_allocation(|| {
                let _ = decode::<Envelope>(bytes, MAX_FRAME);
                let _ = decode::<Response>(bytes, MAX_FRAME);
            });
            prop_assert!(largest <= allocation_bound(bytes.len()), "{largest}");
        }
    }
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[test]
fn specific_bad_frames_get_the_expected_errors() {
    // A request with an unknown variant (index 9) in a well-formed unsigned envelope.
    let envelope = Envelope {
        sender: None,
        payload: vec![9, 0, 0],
        signature: None,
    };
    let frame = framed(&encode(&envelope, MAX_FRAME).expect("encodes"));
    let (frames, failed) = serve(&frame);
    assert!(!failed);
    assert!(
        matches!(&frames[..], [Err(WireError::Malformed(m))] if m == "Request: Serde Deserialization Error"),
        "{frames:?}"
    );
    // A valid request with one byte too many.
    let mut payload = encode(&Request::GetMetadata { blob: id(1) }, MAX_FRAME).expect("encodes");
    payload.push(0);
    let envelope = Envelope {
        payload,
        ..envelope
    };
    assert_eq!(
        decode_request(&encode(&envelope, MAX_FRAME).expect("encodes")),
        Err(WireError::Malformed("Request: 1 trailing bytes".into()))
    );
    // A length prefix over the cap: the codec's InvalidData error, the server's `Malformed`.
    let mut codec = codec(MAX_FRAME);
    let mut buf = BytesMut::from(&framed(&[0; 8])[..]);
    buf[..4].copy_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
    let err = codec.decode(&mut buf).expect_err("over the cap");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let answer = ServiceError::Malformed(err.to_string());
    assert!(
        answer.to_string().contains("frame size too big"),
        "{answer}"
    );
}

#[test]
fn the_allocation_check_fires_on_a_length_sized_allocation() {
    // What a careless decoder would do with a prefix of 2^20: the measurement sees it.
    let (_, largest) = largest_allocation(|| {
        std::hint::black_box(Vec::<u8>::with_capacity(1 << 20));
    });
    assert!(largest >= 1 << 20, "{largest}");
    assert!(largest > allocation_bound(8));
    // Outside a measurement nothing is recorded.
    let _ = std::hint::black_box(vec![0u8; 1 << 21]);
    let (_, largest) = largest_allocation(|| ());
    assert_eq!(largest, 0);
}

#[test]
fn responses_round_trip() {
    let responses = [
        Response::Slivers(vec![(id(1), vec![1, 2, 3]), (id(2), Vec::new())]),
        Response::Metadata(metadata(1000)),
        Response::Symbols(vec![(ShardIndex(999), vec![7; 10])]),
        Response::Stored(vec![(ShardIndex(4), SliverType::Secondary)]),
        Response::Error(ServiceError::InvalidEpoch {
            request_epoch: 3,
            server_epoch: 4,
        }),
    ];
    for response in responses {
        let bytes = encode(&response, MAX_FRAME).expect("encodes");
        // Exactly sized: a message kept in flight holds no spare capacity.
        assert_eq!(bytes.capacity(), bytes.len());
        assert_eq!(decode::<Response>(&bytes, MAX_FRAME), Ok(response));
    }
}
