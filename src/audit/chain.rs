//! The hash chain, as pure functions: `hash = SHA-256(prev_hash || canonical_event_bytes)`.
//!
//! Canonical bytes are a JSON array in a fixed field order, so they do not depend on map ordering
//! or on how a database returns columns; an offline verifier can rebuild them from an export.

use serde::{Deserialize, Serialize};

/// The `prev_hash` of the first event: 32 zero bytes, hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit event as stored (without its own hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBody {
    pub seq: i64,
    pub occurred_at: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub event_type: String,
    pub request_id: Option<String>,
    /// JSON text describing the event.
    pub detail: String,
}

impl EventBody {
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(256 + self.detail.len());
        self.write_canonical(&mut buf);
        buf
    }

    /// Writes the canonical bytes into `buf` (cleared first), so a verifier reuses one buffer.
    pub fn write_canonical(&self, buf: &mut Vec<u8>) {
        buf.clear();
        serde_json::to_writer(
            &mut *buf,
            &(
                self.seq,
                self.occurred_at,
                &self.actor_kind,
                &self.actor_id,
                &self.event_type,
                &self.request_id,
                &self.detail,
            ),
        )
        .expect("tuples of plain values serialise");
    }
}

#[cfg(feature = "ssr")]
pub use ssr::*;

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use sha2::{Digest, Sha256};

    /// The hash of `event` chained onto `prev_hash` (hex in, hex out).
    pub fn chain_hash(prev_hash: &str, event: &EventBody) -> String {
        let mut h = Sha256::new();
        h.update(hex::decode(prev_hash).unwrap_or_default());
        h.update(event.canonical_bytes());
        hex::encode(h.finalize())
    }

    /// [`chain_hash`] on raw bytes with a reusable buffer: the verifier's hot path.
    fn chain_digest(prev: &[u8; 32], event: &EventBody, buf: &mut Vec<u8>) -> [u8; 32] {
        event.write_canonical(buf);
        let mut h = Sha256::new();
        h.update(prev);
        h.update(&buf[..]);
        h.finalize().into()
    }

    /// A 64-character hex hash as bytes; `None` for anything else.
    fn decode32(hex_hash: &str) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_hash, &mut out).ok().map(|()| out)
    }

    /// Why a chain failed to verify, at the first bad sequence number.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum ChainError {
        #[error("event {seq}: expected sequence number {expected} (an event is missing, inserted or reordered)")]
        Gap { seq: i64, expected: i64 },
        #[error("event {seq}: prev_hash does not match the hash of event {}", seq - 1)]
        BrokenLink { seq: i64 },
        #[error("event {seq}: content does not match its hash (the event was changed)")]
        Tampered { seq: i64 },
    }

    /// Verifies events in order, starting after (`start_seq - 1`, `start_prev`).
    pub fn verify<'a>(
        events: impl IntoIterator<Item = (&'a EventBody, &'a str, &'a str)>,
        start_seq: i64,
        start_prev: &str,
    ) -> Result<(i64, String), ChainError> {
        // Hashes are compared as lowercase hex (how they are stored): encoding the computed
        // digest is cheaper than decoding the stored text, and the previous event's hash is
        // compared byte for byte with the next event's `prev_hash`.
        let mut expected = start_seq;
        let mut prev = decode32(start_prev).unwrap_or_default();
        let mut prev_hex = [0u8; 64];
        hex::encode_to_slice(prev, &mut prev_hex).expect("64 bytes hold 32 in hex");
        let mut digest_hex = [0u8; 64];
        let mut buf = Vec::with_capacity(1024);
        for (event, prev_hash, hash) in events {
            if event.seq != expected {
                return Err(ChainError::Gap {
                    seq: event.seq,
                    expected,
                });
            }
            if prev_hash.as_bytes() != prev_hex {
                return Err(ChainError::BrokenLink { seq: event.seq });
            }
            let digest = chain_digest(&prev, event, &mut buf);
            hex::encode_to_slice(digest, &mut digest_hex).expect("64 bytes hold 32 in hex");
            if hash.as_bytes() != digest_hex {
                return Err(ChainError::Tampered { seq: event.seq });
            }
            prev = digest;
            prev_hex = digest_hex;
            expected += 1;
        }
        Ok((expected - 1, hex::encode(prev)))
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn event(seq: i64, detail: &str) -> EventBody {
        EventBody {
            seq,
            occurred_at: 1_700_000_000_000 + seq,
            actor_kind: "user".into(),
            actor_id: Some("usr_dana".into()),
            event_type: "test".into(),
            request_id: None,
            detail: detail.into(),
        }
    }

    fn build(n: i64) -> Vec<(EventBody, String, String)> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let e = event(seq, &format!("{{\"n\":{seq}}}"));
                let h = chain_hash(&prev, &e);
                let row = (e, prev.clone(), h.clone());
                prev = h;
                row
            })
            .collect()
    }

    fn check(rows: &[(EventBody, String, String)]) -> Result<(i64, String), ChainError> {
        verify(
            rows.iter().map(|(e, p, h)| (e, p.as_str(), h.as_str())),
            1,
            GENESIS_HASH,
        )
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let rows = build(5);
        assert_eq!(check(&rows).unwrap().0, 5);
        assert_eq!(check(&[]).unwrap(), (0, GENESIS_HASH.to_owned()));
    }

    #[test]
    fn a_changed_byte_is_caught_at_its_sequence_number() {
        let mut rows = build(5);
        rows[2].0.detail = "{\"n\":4}".into();
        assert_eq!(check(&rows), Err(ChainError::Tampered { seq: 3 }));
    }

    #[test]
    fn removed_inserted_and_reordered_events_are_caught() {
        let mut removed = build(5);
        removed.remove(1);
        assert_eq!(
            check(&removed),
            Err(ChainError::Gap {
                seq: 3,
                expected: 2
            })
        );

        let mut swapped = build(5);
        swapped.swap(1, 2);
        assert_eq!(
            check(&swapped),
            Err(ChainError::Gap {
                seq: 3,
                expected: 2
            })
        );

        // A forged event with renumbered successors still breaks the links.
        let mut forged = build(3);
        forged[1].0.actor_id = Some("usr_mallory".into());
        forged[1].2 = chain_hash(&forged[1].1, &forged[1].0);
        assert_eq!(check(&forged), Err(ChainError::BrokenLink { seq: 3 }));
    }

    #[test]
    fn canonical_bytes_do_not_depend_on_the_detail_formatting_of_other_fields() {
        let a = event(1, "{}");
        assert_eq!(
            String::from_utf8(a.canonical_bytes()).unwrap(),
            r#"[1,1700000000001,"user","usr_dana","test",null,"{}"]"#
        );
    }
}
