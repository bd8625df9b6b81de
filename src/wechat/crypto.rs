//! WeChat's signatures and ciphers (reference: wechat-api.md sections 1b, 6, 7 and 11).
//!
//! - Push signatures: `sha1(sorted(token, timestamp, nonce[, encrypt]))`, compared in constant time.
//! - Safe-mode push bodies: AES-256-CBC, key = base64(EncodingAESKey + "="), iv = key[..16],
//!   PKCS#7 with a 32-byte block, plaintext `random16 | be_u32(len) | msg | appid`.
//! - Open data: AES-128-CBC with the session key, PKCS#7 with a 16-byte block.

use aes::cipher::block_padding::{NoPadding, Pkcs7};
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rand::distr::Alphanumeric;
use rand::Rng;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const PUSH_BLOCK: usize = 32;

/// EncodingAESKeys are 43 characters whose last one often carries non-zero trailing bits, which
/// a strict decoder refuses; WeChat's own SDKs decode them leniently.
const LENIENT_B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("EncodingAESKey must be 43 characters of base64")]
    BadAesKey,
    #[error("not valid base64")]
    Base64,
    #[error("ciphertext length is not a multiple of the block size")]
    BadLength,
    #[error("bad padding")]
    BadPadding,
    #[error("malformed plaintext")]
    Malformed,
    #[error("the message was encrypted for another appid")]
    WrongAppid,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha1` of the parts sorted lexicographically and concatenated, lower-case hex. With
/// `[token, timestamp, nonce]` this is the push `signature`; adding the `Encrypt` field gives the
/// safe-mode `msg_signature`.
pub fn sorted_sha1(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    hex(&Sha1::digest(sorted.concat().as_bytes()))
}

pub fn push_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sorted_sha1(&[token, timestamp, nonce])
}

pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sorted_sha1(&[token, timestamp, nonce, encrypt])
}

/// Constant-time comparison of a computed hex signature with the one received (case-insensitive,
/// since hex case carries no meaning).
pub fn signature_matches(expected: &str, received: &str) -> bool {
    let received = received.to_ascii_lowercase();
    expected.len() == received.len() && bool::from(expected.as_bytes().ct_eq(received.as_bytes()))
}

/// `sha1(rawData + session_key)`, the signature of `wx.getUserInfo`'s rawData.
pub fn raw_data_signature(raw_data: &str, session_key: &str) -> String {
    hex(&Sha1::digest(format!("{raw_data}{session_key}").as_bytes()))
}

/// `hmac_sha256(key = session_key as text, msg)`, lower-case hex (checkSessionKey and user-state
/// signatures).
pub fn session_hmac(session_key: &str, msg: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(session_key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(msg.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// The safe-mode cipher of one app's message push.
#[derive(Clone)]
pub struct PushCipher {
    key: [u8; 32],
    appid: String,
}

impl std::fmt::Debug for PushCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushCipher")
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

impl PushCipher {
    pub fn new(encoding_aes_key: &str, appid: &str) -> Result<Self, CryptoError> {
        let cleaned: String = encoding_aes_key
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if cleaned.len() != 43 {
            return Err(CryptoError::BadAesKey);
        }
        let bytes = LENIENT_B64
            .decode(format!("{cleaned}="))
            .map_err(|_| CryptoError::BadAesKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadAesKey)?;
        Ok(Self {
            key,
            appid: appid.to_string(),
        })
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }

    /// Decrypts an `Encrypt` field and checks that it was made for our appid.
    pub fn decrypt(&self, encrypt: &str) -> Result<String, CryptoError> {
        let data = B64
            .decode(encrypt.trim())
            .map_err(|_| CryptoError::Base64)?;
        if data.is_empty() || data.len() % PUSH_BLOCK != 0 {
            return Err(CryptoError::BadLength);
        }
        let plain = cbc::Decryptor::<aes::Aes256>::new(&self.key.into(), &self.iv().into())
            .decrypt_padded_vec::<NoPadding>(&data)
            .map_err(|_| CryptoError::BadPadding)?;
        let pad = usize::from(*plain.last().ok_or(CryptoError::BadPadding)?);
        if pad == 0 || pad > PUSH_BLOCK || pad > plain.len() {
            return Err(CryptoError::BadPadding);
        }
        let body = &plain[..plain.len() - pad];
        if body.len() < 20 {
            return Err(CryptoError::Malformed);
        }
        let len_bytes: [u8; 4] = body[16..20]
            .try_into()
            .map_err(|_| CryptoError::Malformed)?;
        let len =
            usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| CryptoError::Malformed)?;
        let end = 20usize.checked_add(len).ok_or(CryptoError::Malformed)?;
        if end > body.len() {
            return Err(CryptoError::Malformed);
        }
        let msg = std::str::from_utf8(&body[20..end]).map_err(|_| CryptoError::Malformed)?;
        let appid = &body[end..];
        if !bool::from(appid.ct_eq(self.appid.as_bytes())) {
            return Err(CryptoError::WrongAppid);
        }
        Ok(msg.to_string())
    }

    /// Encrypts `msg` as WeChat does (used by the sandbox when it plays WeChat).
    pub fn encrypt(&self, msg: &str) -> String {
        let random: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(16)
            .map(char::from)
            .collect();
        self.encrypt_with_prefix(random.as_bytes(), msg)
    }

    fn encrypt_with_prefix(&self, random16: &[u8], msg: &str) -> String {
        let msg_len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
        let mut plain = Vec::with_capacity(20 + msg.len() + self.appid.len() + PUSH_BLOCK);
        plain.extend_from_slice(random16);
        plain.extend_from_slice(&msg_len.to_be_bytes());
        plain.extend_from_slice(msg.as_bytes());
        plain.extend_from_slice(self.appid.as_bytes());
        let pad = PUSH_BLOCK - plain.len() % PUSH_BLOCK;
        // pad is 1..=32, so it fits a byte.
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        let cipher = cbc::Encryptor::<aes::Aes256>::new(&self.key.into(), &self.iv().into())
            .encrypt_padded_vec::<NoPadding>(&plain);
        B64.encode(cipher)
    }
}

/// Decrypts `encryptedData` from the mini-program with the member's session key and checks the
/// watermark's appid.
pub fn decrypt_open_data(
    session_key: &str,
    iv: &str,
    encrypted_data: &str,
    appid: &str,
) -> Result<serde_json::Value, CryptoError> {
    let key: [u8; 16] = B64
        .decode(session_key)
        .map_err(|_| CryptoError::Base64)?
        .try_into()
        .map_err(|_| CryptoError::BadAesKey)?;
    let iv: [u8; 16] = B64
        .decode(iv)
        .map_err(|_| CryptoError::Base64)?
        .try_into()
        .map_err(|_| CryptoError::BadLength)?;
    let data = B64
        .decode(encrypted_data)
        .map_err(|_| CryptoError::Base64)?;
    let plain = cbc::Decryptor::<aes::Aes128>::new(&key.into(), &iv.into())
        .decrypt_padded_vec::<Pkcs7>(&data)
        .map_err(|_| CryptoError::BadPadding)?;
    let value: serde_json::Value =
        serde_json::from_slice(&plain).map_err(|_| CryptoError::Malformed)?;
    if value["watermark"]["appid"].as_str() != Some(appid) {
        return Err(CryptoError::WrongAppid);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors of wechat-api.md section 11.

    #[test]
    fn a_url_verification_signature() {
        assert_eq!(
            push_signature("AAAAA", "1714036504", "1514711492"),
            "f464b24fc39322e44b38aa78f5edd27bd1441696"
        );
    }

    #[test]
    fn b_plain_post_signature() {
        assert_eq!(
            push_signature("AAAAA", "1714037059", "486452656"),
            "899cf89e464efb63f54ddac96b0a0a235f53aa78"
        );
    }

    const C_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
    const C_APPID: &str = "wx49f0ab532d5d035a";
    const C_ENCRYPT: &str =
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==";

    #[test]
    fn c_safe_mode_msg_signature_and_decryption() {
        assert_eq!(
            msg_signature("123456", "1411443780", "437374425", C_ENCRYPT),
            "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
        );
        let cipher = PushCipher::new(C_KEY, C_APPID).unwrap();
        assert_eq!(cipher.decrypt(C_ENCRYPT).unwrap(), "5927782489442352469");
    }

    #[test]
    fn c_safe_mode_rejects_another_appid() {
        let cipher = PushCipher::new(C_KEY, "wx0000000000000000").unwrap();
        assert_eq!(cipher.decrypt(C_ENCRYPT), Err(CryptoError::WrongAppid));
    }

    #[test]
    fn safe_mode_round_trips_and_matches_wechat_layout() {
        let cipher = PushCipher::new(C_KEY, C_APPID).unwrap();
        let msg = r#"{"ToUserName":"gh_1","Event":"subscribe_msg_popup_event","说明":"中文"}"#;
        let encrypted = cipher.encrypt(msg);
        assert_eq!(cipher.decrypt(&encrypted).unwrap(), msg);
        // Re-encrypting vector C's plaintext with its random prefix reproduces WeChat's bytes.
        let prefix = {
            let data = B64.decode(C_ENCRYPT).unwrap();
            let iv = cipher.iv();
            let plain = cbc::Decryptor::<aes::Aes256>::new(&cipher.key.into(), &iv.into())
                .decrypt_padded_vec::<NoPadding>(&data)
                .unwrap();
            plain[..16].to_vec()
        };
        assert_eq!(
            cipher.encrypt_with_prefix(&prefix, "5927782489442352469"),
            C_ENCRYPT
        );
    }

    #[test]
    fn bad_keys_and_tampered_ciphertexts_are_errors_not_panics() {
        assert_eq!(
            PushCipher::new("short", C_APPID).unwrap_err(),
            CryptoError::BadAesKey
        );
        let cipher = PushCipher::new(C_KEY, C_APPID).unwrap();
        assert!(cipher.decrypt("not base64!").is_err());
        assert!(cipher.decrypt(&B64.encode([0u8; 31])).is_err());
        assert!(cipher.decrypt(&B64.encode([7u8; 64])).is_err());
    }

    #[test]
    fn d_open_data_decryption() {
        let data = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";
        let value = decrypt_open_data(
            "tiihtNczf5v6AKRyjwEUhQ==",
            "r7BXXKkLb8qrSNn05n0qiA==",
            data,
            "wx4f4bc4dec97d474b",
        )
        .unwrap();
        assert_eq!(value["openId"], "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
        assert_eq!(value["unionId"], "ocMvos6NjeKLIBqg5Mr9QjxrP1FA");
        assert_eq!(value["watermark"]["timestamp"], 1477314187);

        let wrong_app = decrypt_open_data(
            "tiihtNczf5v6AKRyjwEUhQ==",
            "r7BXXKkLb8qrSNn05n0qiA==",
            data,
            "wx0000000000000000",
        );
        assert_eq!(wrong_app, Err(CryptoError::WrongAppid));
    }

    #[test]
    fn e_raw_data_signature() {
        let raw = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;
        assert_eq!(
            raw_data_signature(raw, "HyVFkGl5F5OQWJZZaNzBBg=="),
            "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
        );
    }

    #[test]
    fn f_session_key_hmac() {
        assert_eq!(
            session_hmac("o0q0otL8aEzpcZL/FT9WsQ==", r#"{"foo":"bar"}"#),
            "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
        );
        assert_eq!(
            session_hmac("o0q0otL8aEzpcZL/FT9WsQ==", ""),
            "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"
        );
    }

    #[test]
    fn signatures_compare_in_constant_time_and_ignore_hex_case() {
        let sig = push_signature("AAAAA", "1714036504", "1514711492");
        assert!(signature_matches(&sig, &sig.to_uppercase()));
        assert!(!signature_matches(&sig, &sig[..39]));
        assert!(!signature_matches(
            &sig,
            "0000000000000000000000000000000000000000"
        ));
    }
}
