//! The server's Ed25519 key, which signs audit checkpoints and evidence bundles.
//!
//! The key is a 32-byte seed, hex, in a file only the server's user can read (created on first
//! start). Several processes sharing one database must share the key file, or each would sign
//! checkpoints the others cannot vouch for. The public key is shown on the audit page and put in
//! every evidence bundle, so an auditor can pin it.

use anyhow::Context as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use std::path::Path;

/// Signs checkpoints and bundle manifests. Deliberately neither `Debug` nor `Serialize`.
pub struct AuditKey {
    signing: SigningKey,
}

impl AuditKey {
    /// Reads the key file, creating it (mode 0600) with a fresh random key when it is missing.
    pub fn load_or_create(path: &Path) -> anyhow::Result<AuditKey> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(text.trim())
                .with_context(|| format!("{} does not hold an audit signing key", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                write_private(path, &hex::encode(key.signing.to_bytes()))
                    .with_context(|| format!("could not write {}", path.display()))?;
                tracing::info!(
                    "created audit signing key {} (public key {})",
                    path.display(),
                    key.public_hex()
                );
                Ok(key)
            }
            Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
        }
    }

    pub fn generate() -> AuditKey {
        use rand::RngCore as _;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        AuditKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    fn from_hex(text: &str) -> anyhow::Result<AuditKey> {
        let bytes: [u8; 32] = hex::decode(text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .context("expected 64 hexadecimal characters")?;
        Ok(AuditKey {
            signing: SigningKey::from_bytes(&bytes),
        })
    }

    /// The public key, hex (64 characters).
    pub fn public_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().to_bytes())
    }

    /// An Ed25519 signature over `message`, hex.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.signing.sign(message).to_bytes())
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Why a signature did not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("the public key is not a valid Ed25519 key")]
    BadKey,
    #[error("the signature is malformed")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
}

/// Checks an Ed25519 signature given everything as hex.
pub fn verify_signature(
    public_hex: &str,
    message: &[u8],
    signature_hex: &str,
) -> Result<(), SignatureProblem> {
    let key_bytes: [u8; 32] = hex::decode(public_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SignatureProblem::BadKey)?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| SignatureProblem::BadKey)?;
    let sig_bytes: [u8; 64] = hex::decode(signature_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SignatureProblem::Malformed)?;
    key.verify(message, &Signature::from_bytes(&sig_bytes))
        .map_err(|_| SignatureProblem::Mismatch)
}

/// The exact bytes a checkpoint signature covers. Versioned and line-based so that an auditor
/// can rebuild it with a shell one-liner.
pub fn checkpoint_message(seq: i64, hash: &str, signed_at: i64) -> Vec<u8> {
    format!("countersign audit checkpoint v1\nseq={seq}\nhash={hash}\nsigned_at={signed_at}\n")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_message_and_key() {
        let key = AuditKey::generate();
        let msg = checkpoint_message(7, "ab", 1);
        let sig = key.sign(&msg);
        assert_eq!(verify_signature(&key.public_hex(), &msg, &sig), Ok(()));
        assert_eq!(
            verify_signature(&key.public_hex(), &checkpoint_message(8, "ab", 1), &sig),
            Err(SignatureProblem::Mismatch)
        );
        let other = AuditKey::generate();
        assert_eq!(
            verify_signature(&other.public_hex(), &msg, &sig),
            Err(SignatureProblem::Mismatch)
        );
        assert_eq!(
            verify_signature(&key.public_hex(), &msg, "zz"),
            Err(SignatureProblem::Malformed)
        );
        assert_eq!(
            verify_signature("00", &msg, &sig),
            Err(SignatureProblem::BadKey)
        );
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-signing.key");
        let first = AuditKey::load_or_create(&path).unwrap();
        let again = AuditKey::load_or_create(&path).unwrap();
        assert_eq!(first.public_hex(), again.public_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(AuditKey::load_or_create(&path).is_err());
    }
}
