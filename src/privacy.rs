//! Personal data at rest (DESIGN section 8): phones and session keys encrypted with AES-256-GCM,
//! phones found through a keyed hash (HMAC-SHA256, a "blind index") so that the database never
//! holds a phone in the clear, and masked for display (138****1234).

use aes_gcm::aead::{Aead, Generate, KeyInit};
use aes_gcm::{Aes256Gcm, Key};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::config::SecuritySettings;

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrivacyError {
    #[error("security.{0} must be 32 bytes of base64")]
    BadKey(&'static str),
    #[error("security.data_key and security.index_key are required with a real WeChat appid")]
    MissingKeys,
    #[error("cannot decrypt a stored value (wrong data_key?)")]
    Decrypt,
    #[error("not a phone number")]
    BadPhone,
}

/// The keys that protect personal data.
#[derive(Clone)]
pub struct Vault {
    cipher: Aes256Gcm,
    index_key: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

fn key_bytes(value: &SecretString, name: &'static str) -> Result<[u8; 32], PrivacyError> {
    B64.decode(value.expose_secret().trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(PrivacyError::BadKey(name))
}

// Development keys for the embedded default (sandbox WeChat, a laptop). They are public, so
// data encrypted with them is not protected; a real appid refuses to start without real keys.
const DEV_DATA_KEY: &str = "bWVtYmVyaHViLWRldmVsb3BtZW50LWRhdGEta2V5ISE=";
const DEV_INDEX_KEY: &str = "bWVtYmVyaHViLWRldmVsb3BtZW50LWluZGV4LWtleSE=";

impl Vault {
    pub fn new(data_key: [u8; 32], index_key: [u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(data_key)),
            index_key,
        }
    }

    /// Builds the vault from settings. Without keys it falls back to the public development
    /// keys only when `allow_dev_keys` (no real WeChat appid configured).
    pub fn from_settings(
        settings: &SecuritySettings,
        allow_dev_keys: bool,
    ) -> Result<Self, PrivacyError> {
        match (&settings.data_key, &settings.index_key) {
            (Some(data), Some(index)) => Ok(Self::new(
                key_bytes(data, "data_key")?,
                key_bytes(index, "index_key")?,
            )),
            (None, None) if allow_dev_keys => {
                tracing::warn!(
                    "security: using the public development keys; set MEMBERHUB_SECURITY__DATA_KEY and __INDEX_KEY before storing real members' data"
                );
                Ok(Self::new(
                    key_bytes(&SecretString::from(DEV_DATA_KEY), "data_key")?,
                    key_bytes(&SecretString::from(DEV_INDEX_KEY), "index_key")?,
                ))
            }
            _ => Err(PrivacyError::MissingKeys),
        }
    }

    /// `base64(nonce | ciphertext+tag)`, a fresh random nonce each time.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let nonce = aes_gcm::Nonce::generate();
        // Encryption with a valid key and an in-memory buffer does not fail.
        let sealed = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, PrivacyError> {
        let raw = B64.decode(stored).map_err(|_| PrivacyError::Decrypt)?;
        if raw.len() < NONCE_LEN {
            return Err(PrivacyError::Decrypt);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = aes_gcm::Nonce::try_from(nonce).map_err(|_| PrivacyError::Decrypt)?;
        let plain = self
            .cipher
            .decrypt(&nonce, sealed)
            .map_err(|_| PrivacyError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| PrivacyError::Decrypt)
    }

    /// The keyed hash of a normalised phone, lower-case hex.
    pub fn phone_index(&self, phone: &Phone) -> String {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.index_key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(phone.as_str().as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A phone number in one canonical form: 11 digits for mainland China, `+CC` and digits
/// otherwise. Parse, don't validate: once a `Phone` exists it is well formed.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl Phone {
    /// From WeChat's `purePhoneNumber` and `countryCode` (or a number typed by staff).
    pub fn parse(number: &str, country_code: &str) -> Result<Self, PrivacyError> {
        let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let cc = country_code.trim().trim_start_matches('+');
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(PrivacyError::BadPhone);
        }
        if cc.is_empty() || cc == "86" {
            let local = digits
                .strip_prefix("86")
                .filter(|d| d.len() == 11)
                .unwrap_or(&digits);
            if local.len() == 11 && local.starts_with('1') {
                return Ok(Self(local.to_string()));
            }
            return Err(PrivacyError::BadPhone);
        }
        if !cc.chars().all(|c| c.is_ascii_digit()) || !(5..=15).contains(&digits.len()) {
            return Err(PrivacyError::BadPhone);
        }
        Ok(Self(format!("+{cc}{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `138****1234`: enough to recognise, not enough to call.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < 8 {
            return "****".into();
        }
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}****{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::new([7u8; 32], [9u8; 32])
    }

    #[test]
    fn phones_round_trip_encrypted_with_fresh_nonces() {
        let v = vault();
        let a = v.encrypt("13812345678");
        let b = v.encrypt("13812345678");
        assert_ne!(a, b);
        assert!(!a.contains("13812345678"));
        assert_eq!(v.decrypt(&a).unwrap(), "13812345678");
        let other = Vault::new([8u8; 32], [9u8; 32]);
        assert_eq!(other.decrypt(&a), Err(PrivacyError::Decrypt));
    }

    #[test]
    fn the_index_is_stable_keyed_and_not_the_phone() {
        let v = vault();
        let p = Phone::parse("138 1234 5678", "86").unwrap();
        let q = Phone::parse("+8613812345678", "")
            .unwrap_or_else(|_| Phone::parse("8613812345678", "86").unwrap());
        assert_eq!(v.phone_index(&p), v.phone_index(&q));
        assert_eq!(v.phone_index(&p).len(), 64);
        assert_ne!(
            v.phone_index(&p),
            Vault::new([7u8; 32], [1u8; 32]).phone_index(&p)
        );
    }

    #[test]
    fn phones_are_parsed_masked_and_debug_printed_masked() {
        let p = Phone::parse("13812345678", "86").unwrap();
        assert_eq!(p.masked(), "138****5678");
        assert_eq!(format!("{p:?}"), "Phone(138****5678)");
        assert_eq!(
            Phone::parse("91234567", "852").unwrap().as_str(),
            "+85291234567"
        );
        assert!(Phone::parse("12345", "86").is_err());
        assert!(Phone::parse("abc", "86").is_err());
    }

    #[test]
    fn real_appids_need_real_keys() {
        let none = SecuritySettings::default();
        assert_eq!(
            Vault::from_settings(&none, false).unwrap_err(),
            PrivacyError::MissingKeys
        );
        assert!(Vault::from_settings(&none, true).is_ok());
        let short = SecuritySettings {
            data_key: Some(SecretString::from("c2hvcnQ=")),
            index_key: Some(SecretString::from("c2hvcnQ=")),
        };
        assert_eq!(
            Vault::from_settings(&short, false).unwrap_err(),
            PrivacyError::BadKey("data_key")
        );
    }
}
