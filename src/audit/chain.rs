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
    ///
    /// The bytes are exactly what `serde_json` writes for the tuple `(seq, occurred_at,
    /// actor_kind, actor_id, event_type, request_id, detail)`, which is how every stored hash
    /// was computed. Written by hand, strings are copied eight bytes at a time where nothing
    /// needs escaping; building these bytes is most of a verifier's work besides hashing
    /// (BENCHMARKS.md, "Audit verify").
    pub fn write_canonical(&self, buf: &mut Vec<u8>) {
        buf.clear();
        buf.push(b'[');
        let mut number = itoa::Buffer::new();
        buf.extend_from_slice(number.format(self.seq).as_bytes());
        buf.push(b',');
        buf.extend_from_slice(number.format(self.occurred_at).as_bytes());
        buf.push(b',');
        push_json_string(buf, &self.actor_kind);
        buf.push(b',');
        push_json_option(buf, self.actor_id.as_deref());
        buf.push(b',');
        push_json_string(buf, &self.event_type);
        buf.push(b',');
        push_json_option(buf, self.request_id.as_deref());
        buf.push(b',');
        push_json_string(buf, &self.detail);
        buf.push(b']');
    }
}

fn push_json_option(buf: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => push_json_string(buf, text),
        None => buf.extend_from_slice(b"null"),
    }
}

/// `text` as a JSON string, byte for byte as `serde_json` writes it.
fn push_json_string(buf: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // Control characters have several escape forms; they are rare here (details are JSON text,
    // whose strings never hold them raw), so serde_json writes those strings itself.
    let has_control = bytes.iter().fold(false, |any, &b| any | (b < 0x20));
    if has_control {
        serde_json::to_writer(&mut *buf, text).expect("a string serialises");
        return;
    }
    buf.reserve(bytes.len() * 2 + 2);
    buf.push(b'"');
    // Eight bytes at a time: a word without a quote or backslash is copied whole.
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        if has_quote_or_backslash(u64::from_le_bytes(word.try_into().expect("8 bytes"))) {
            push_escaped(buf, word);
        } else {
            buf.extend_from_slice(word);
        }
    }
    push_escaped(buf, words.remainder());
    buf.push(b'"');
}

fn push_escaped(buf: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == b'"' || b == b'\\' {
            buf.push(b'\\');
        }
        buf.push(b);
    }
}

/// Whether any byte of `word` is `"` or `\`: a byte equal to the pattern becomes zero under XOR,
/// and the classic has-zero-byte test finds it without looking at the bytes one by one.
fn has_quote_or_backslash(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS != 0;
    has_zero(word ^ (ONES * b'"' as u64)) || has_zero(word ^ (ONES * b'\\' as u64))
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

    /// How every stored hash was computed before the canonical bytes were written by hand.
    fn serde_canonical(e: &EventBody) -> Vec<u8> {
        serde_json::to_vec(&(
            e.seq,
            e.occurred_at,
            &e.actor_kind,
            &e.actor_id,
            &e.event_type,
            &e.request_id,
            &e.detail,
        ))
        .unwrap()
    }

    #[test]
    fn canonical_bytes_are_byte_for_byte_what_serde_json_writes() {
        let mut texts: Vec<String> = [
            "",
            "plain",
            r#"{"kind":"approve","reason":"a \"quoted\" \\ reason"}"#,
            "\"",
            "\\",
            "ends with a backslash \\",
            "\u{7f} del, é, 日本, 🦀",
            "tab\tnew\nline\rcarriage\u{8}\u{c}\u{0}\u{1f} and a \"quote\"",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        // Every control character alone and next to the two escaped ASCII characters.
        texts.extend((0u8..0x20).map(|b| format!("a{}\"\\", b as char)));
        // Pseudo-random texts without control characters (those are covered above), so most
        // take the word-at-a-time path: some eight-byte words hold a quote or backslash, some
        // do not, and the tails vary.
        let alphabet = ['a', 'b', 'c', '"', '\\', '/', 'é', '🦀', ' ', '{', '}', ':'];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..500 {
            let mut text = String::new();
            for _ in 0..(state % 60) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            texts.push(text);
        }
        let mut buf = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let e = EventBody {
                seq: i as i64 - 3,
                occurred_at: i64::MAX - i as i64,
                actor_kind: text.clone(),
                actor_id: (i % 2 == 0).then(|| text.clone()),
                event_type: format!("{text}{text}"),
                request_id: (i % 3 == 0).then(|| text.clone()),
                detail: text.clone(),
            };
            e.write_canonical(&mut buf);
            assert_eq!(buf, serde_canonical(&e), "text {text:?}");
        }
        // SHA-256 of 32 zero bytes and the canonical text, computed outside Rust.
        assert_eq!(
            chain_hash(GENESIS_HASH, &event(1, "{}")),
            "269ae185270437bb68b8b803b7d8e4140d5aa374d564d4b9851a1b850e5ee0c1"
        );
    }
}
