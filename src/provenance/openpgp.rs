//! Trusted OpenPGP keys (armored public keys, `approval.openpgpKeys`) and OpenPGP commit
//! signatures, verified with the pgp crate: the primary key or any of its subkeys may have
//! made the signature.

use std::path::Path;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;

use super::signers::SignatureProblem;

/// The trusted keys and the file each came from.
#[derive(Debug, Clone, Default)]
pub struct OpenPgpKeys {
    keys: Vec<(String, SignedPublicKey)>,
}

/// A key file that cannot be used, named.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct KeyError {
    pub file: String,
    pub message: String,
}

impl OpenPgpKeys {
    /// Reads armored public keys (one or more per file).
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<OpenPgpKeys, KeyError> {
        let mut keys = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let file = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| KeyError {
                file: file.clone(),
                message: format!("cannot read: {e}"),
            })?;
            keys.extend(Self::parse(&file, &text)?.keys);
        }
        Ok(OpenPgpKeys { keys })
    }

    /// Parses armored public keys named `file` in errors.
    pub fn parse(file: &str, text: &str) -> Result<OpenPgpKeys, KeyError> {
        let err = |message: String| KeyError {
            file: file.to_string(),
            message,
        };
        let (parsed, _) = SignedPublicKey::from_string_many(text)
            .map_err(|e| err(format!("not an armored OpenPGP public key: {e}")))?;
        let mut keys = Vec::new();
        for key in parsed {
            let key = key.map_err(|e| err(format!("invalid OpenPGP public key: {e}")))?;
            key.verify_bindings()
                .map_err(|e| err(format!("the key's self-signatures do not verify: {e}")))?;
            keys.push((file.to_string(), key));
        }
        if keys.is_empty() {
            return Err(err("no OpenPGP public key in this file".into()));
        }
        Ok(OpenPgpKeys { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies an armored signature over `data`; returns `file (fingerprint)` of the key.
    pub fn verify(&self, armored: &str, data: &[u8]) -> Result<String, SignatureProblem> {
        let (sig, _) = DetachedSignature::from_string(armored.trim())
            .map_err(|e| SignatureProblem::Malformed(e.to_string()))?;
        let mut last = None;
        for (file, key) in &self.keys {
            let fingerprint = format!("{:?}", key.fingerprint());
            if sig.verify(key, data).is_ok() {
                return Ok(format!("{file} ({fingerprint})"));
            }
            for sub in &key.public_subkeys {
                match sig.verify(&sub.key, data) {
                    Ok(()) => return Ok(format!("{file} ({fingerprint}, subkey)")),
                    Err(e) => last = Some(e.to_string()),
                }
            }
        }
        Err(match last {
            // The signature was made by none of the trusted keys, or does not verify.
            _ if self.keys.is_empty() => SignatureProblem::OpenPgpNotTrusted,
            _ => SignatureProblem::UntrustedOpenPgp,
        })
    }
}
