//! Signed saved plans: `swing plan --out F --sign KEYREF` signs the saved plan's digest with an
//! Ed25519 key, `swing apply --require-signature PUBKEY` applies only what that key signed, and
//! `swing show` says who signed and whether the signature verifies.
//!
//! Keys are standard formats: the private key is PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`,
//! e.g. `openssl genpkey -algorithm ed25519`), handed in as a resolved [`SecretValue`]; the
//! public key is SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`, `openssl pkey
//! -pubout`). The signature is over the bytes `swing-saved-plan-digest:` followed by the
//! digest's hex text, so it can never be mistaken for a signature over anything else.
//!
//! Owns: parsing keys, signing and verifying a [`SavedPlan`]'s digest. Must not: resolve a
//! secret reference (the CLI's wiring does), keep or print the private key (it lives only in
//! the `SecretValue` and the zeroized `SigningKey` for the duration of [`sign`]), or decide
//! whether an unsigned plan may be applied (`ops::trust` does).

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use swing_schema::SecretValue;

use crate::planfile::{PlanSignature, SavedPlan};

/// The one signature algorithm of saved plans.
pub const ALGORITHM: &str = "ed25519";
const CONTEXT: &[u8] = b"swing-saved-plan-digest:";

/// A key could not be read, or a plan could not be signed. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    #[error(
        "the signing key is not an Ed25519 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----, e.g. from `openssl genpkey -algorithm ed25519`)"
    )]
    PrivateKey,
    #[error(
        "{0} is not an Ed25519 public key in PEM (-----BEGIN PUBLIC KEY-----, e.g. from `openssl pkey -pubout`)"
    )]
    PublicKey(String),
}

/// A public key a saved plan must be signed with (`--require-signature`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads a public key from PEM text; `origin` names where it came from in the error.
    pub fn from_pem(text: &str, origin: &str) -> Result<PublicKey, SigningError> {
        VerifyingKey::from_public_key_pem(text.trim())
            .map(PublicKey)
            .map_err(|_| SigningError::PublicKey(origin.to_owned()))
    }

    /// `SHA256:` and the hex SHA-256 of the key's 32 bytes: how a signer is named.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.0.as_bytes())
    }
}

fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", hex::encode(Sha256::digest(key)))
}

fn message(digest: &str) -> Vec<u8> {
    [CONTEXT, digest.as_bytes()].concat()
}

/// Signs `saved`'s digest with `key` (PKCS#8 PEM) and records the signature and the signer's
/// public key in it. Seal the plan first: the signature covers the digest as it is.
pub fn sign(saved: &mut SavedPlan, key: &SecretValue) -> Result<(), SigningError> {
    let signing =
        SigningKey::from_pkcs8_pem(key.expose().trim()).map_err(|_| SigningError::PrivateKey)?;
    let public = signing.verifying_key();
    let signature = signing.sign(&message(&saved.digest));
    saved.signature = Some(PlanSignature {
        algorithm: ALGORITHM.to_owned(),
        public_key: hex::encode(public.as_bytes()),
        fingerprint: fingerprint(public.as_bytes()),
        signature: hex::encode(signature.to_bytes()),
    });
    Ok(())
}

/// What a saved plan's signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// No signature.
    Unsigned,
    /// Signed by the key with this fingerprint, and the signature verifies over the digest.
    Valid { signer: String },
    /// A signature that does not verify (wrong key, edited digest, malformed).
    Invalid { signer: String },
}

/// Checks `saved`'s signature against the public key recorded next to it. Says nothing about
/// whether the digest matches the plan (`SavedPlan::is_intact` does) nor whether the signer
/// is the one required (compare [`PublicKey::fingerprint`]).
pub fn check(saved: &SavedPlan) -> SignatureCheck {
    let Some(sig) = &saved.signature else {
        return SignatureCheck::Unsigned;
    };
    let key = hex::decode(&sig.public_key)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok());
    let signer = key.map_or_else(|| sig.fingerprint.clone(), |k| fingerprint(&k));
    let verifies = sig.algorithm == ALGORITHM
        && key
            .and_then(|k| VerifyingKey::from_bytes(&k).ok())
            .zip(
                hex::decode(&sig.signature)
                    .ok()
                    .and_then(|s| <[u8; 64]>::try_from(s).ok()),
            )
            .is_some_and(|(k, s)| {
                k.verify(
                    &message(&saved.digest),
                    &ed25519_dalek::Signature::from_bytes(&s),
                )
                .is_ok()
            });
    if verifies && sig.fingerprint == signer {
        SignatureCheck::Valid { signer }
    } else {
        SignatureCheck::Invalid { signer }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::Fingerprint;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};

    fn key(seed: u8) -> (SecretValue, PublicKey) {
        let k = SigningKey::from_bytes(&[seed; 32]);
        let pem = k.to_pkcs8_pem(LineEnding::LF).unwrap();
        let public = k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        (
            SecretValue::new(pem.as_str()),
            PublicKey::from_pem(&public, "test").unwrap(),
        )
    }

    fn saved() -> SavedPlan {
        let plan = serde_json::from_value(serde_json::json!({
            "version": 1, "name": "chg", "site": "access.example.com",
            "target": {"version": "25.1.3"},
            "appliances": {"b": {"address": "10.0.0.12"}},
            "backup": {"directory": "./backups", "password": "${env:P}"},
            "providers": {"appliance": {"type": "beyondtrust", "client_id": "x", "client_secret": "${env:S}"}}
        }))
        .unwrap();
        SavedPlan::new(
            &plan,
            "plan.yaml",
            std::path::Path::new("/srv"),
            false,
            vec![],
            vec![],
            Fingerprint::default(),
            serde_json::Value::Null,
        )
    }

    #[test]
    fn a_signature_verifies_only_over_the_digest_it_signed() {
        let (private, public) = key(7);
        let mut s = saved();
        assert_eq!(check(&s), SignatureCheck::Unsigned);
        sign(&mut s, &private).unwrap();
        assert_eq!(
            check(&s),
            SignatureCheck::Valid {
                signer: public.fingerprint()
            }
        );
        let mut edited = s.clone();
        edited.steps.push("b.install".into());
        edited.digest = edited.compute_digest();
        assert_eq!(
            check(&edited),
            SignatureCheck::Invalid {
                signer: public.fingerprint()
            }
        );
        // Re-signed by another key: valid, but not by the required signer.
        let (other, other_public) = key(9);
        edited.seal();
        sign(&mut edited, &other).unwrap();
        assert_eq!(
            check(&edited),
            SignatureCheck::Valid {
                signer: other_public.fingerprint()
            }
        );
        assert_ne!(other_public.fingerprint(), public.fingerprint());
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let mut s = saved();
        let err = sign(&mut s, &SecretValue::new("not a key CANARY")).unwrap_err();
        assert!(!err.to_string().contains("CANARY"));
        let err = PublicKey::from_pem("garbage", "key.pub").unwrap_err();
        assert!(err.to_string().starts_with("key.pub is not"), "{err}");
    }
}
