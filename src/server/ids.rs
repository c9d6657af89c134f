//! Identifiers are UUIDv7 in simple (hex) form with a short type prefix: they sort by creation
//! time, are unique across processes without coordination, and say what they name in logs.

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// `bytes` random bytes from the operating system, base64-encoded with `engine`: the one source
/// of every secret the server hands out (agent tokens, approval tokens, setup links, webhook
/// secrets).
pub fn random_secret(bytes: usize, engine: &impl base64::Engine) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    engine.encode(buf)
}

/// A URL-safe random token of 256 bits.
pub fn random_token() -> String {
    random_secret(32, &base64::engine::general_purpose::URL_SAFE_NO_PAD)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_prefixed_unique_and_time_ordered() {
        let a = super::new_id("req");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new_id("req");
        assert!(a.starts_with("req_") && a.len() == 36, "{a}");
        assert!(a < b);
    }
}
