//! Node keys: ed25519 key pairs derived from the simulation seed, signing of envelopes and
//! verification against the key the chain holds for the sender.

use super::message::Envelope;
use crate::types::NodeId;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// A node's signing key.
#[derive(Clone)]
pub struct NodeKey(SigningKey);

impl NodeKey {
    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Wraps `payload` in an envelope signed by this key.
    pub fn seal(&self, sender: NodeId, payload: Vec<u8>) -> Envelope {
        let signature = self.0.sign(&payload).to_bytes().to_vec();
        Envelope {
            sender: Some(sender),
            payload,
            signature: Some(signature),
        }
    }
}

/// The deterministic key pair of `node` in a simulation seeded with `seed`.
pub fn node_keypair(seed: u64, node: NodeId) -> NodeKey {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"shardstorm-node-key");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&node.0.to_le_bytes());
    NodeKey(SigningKey::from_bytes(hasher.finalize().as_bytes()))
}

/// Checks the envelope's signature against `public_key`.
pub fn verify_envelope(envelope: &Envelope, public_key: &[u8; 32]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Some(sig) = envelope.signature.as_deref() else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(sig) else {
        return false;
    };
    key.verify(&envelope.payload, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_senders_key_and_payload() {
        let a = node_keypair(1, NodeId(1));
        let b = node_keypair(1, NodeId(2));
        let env = a.seal(NodeId(1), b"hello".to_vec());
        assert!(verify_envelope(&env, &a.public()));
        assert!(!verify_envelope(&env, &b.public()));
        let mut tampered = env.clone();
        tampered.payload[0] ^= 1;
        assert!(!verify_envelope(&tampered, &a.public()));
        let unsigned = Envelope {
            signature: None,
            ..env.clone()
        };
        assert!(!verify_envelope(&unsigned, &a.public()));
        let short = Envelope {
            signature: Some(vec![1, 2, 3]),
            ..env
        };
        assert!(!verify_envelope(&short, &a.public()));
    }

    #[test]
    fn keys_are_deterministic_per_seed_and_node() {
        assert_eq!(
            node_keypair(7, NodeId(3)).public(),
            node_keypair(7, NodeId(3)).public()
        );
        assert_ne!(
            node_keypair(7, NodeId(3)).public(),
            node_keypair(8, NodeId(3)).public()
        );
    }
}
