//! The WeChat API client: one HTTP client with timeouts, errcode checked in every answer, and the
//! access token shared by every instance through the cache (wechat-api.md section 2.4):
//! `stable_token` only (instances never invalidate each other's token), one fetcher at a time
//! (lock, then a second look at the cache), compare-and-delete of a rejected token and exactly one
//! retry, backoff on -1, never an automatic force refresh.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::cache::{Cache, CacheError};

/// Token errors after which the token is dropped and the call retried once.
const TOKEN_ERRORS: [i64; 3] = [40001, 40014, 42001];
const BUSY: i64 = -1;
/// How long a caller waits for another instance's token fetch before giving up.
const TOKEN_WAIT: Duration = Duration::from_secs(15);
const LOCK_LEASE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum WechatError {
    #[error("wechat errcode {code}: {message}")]
    Api { code: i64, message: String },
    #[error("wechat unreachable: {0}")]
    Transport(String),
    #[error("wechat answered HTTP {0}")]
    Status(u16),
    #[error("wechat answer not understood: {0}")]
    Decode(String),
    #[error("cache: {0}")]
    Cache(#[from] CacheError),
    #[error("timed out waiting for the access token")]
    TokenWait,
}

impl WechatError {
    /// WeChat's errcode, when WeChat answered with one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn is_token_error(&self) -> bool {
        self.code().is_some_and(|c| TOKEN_ERRORS.contains(&c))
    }

    /// WeChat could not be reached or did not answer sensibly (as opposed to refusing).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Transport(_) | Self::Status(_) | Self::Decode(_) | Self::TokenWait
        ) || self.code() == Some(BUSY)
    }
}

/// Reads `errcode` leniently: a number, a numeric string, or absent (0).
pub fn errcode_of(body: &Value) -> Result<i64, WechatError> {
    match &body["errcode"] {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| WechatError::Decode(format!("errcode {n}"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| WechatError::Decode(format!("errcode {s:?}"))),
        other => Err(WechatError::Decode(format!("errcode {other}"))),
    }
}

/// Turns a WeChat answer into its JSON, or the error its errcode names.
pub fn check(body: Value) -> Result<Value, WechatError> {
    match errcode_of(&body)? {
        0 => Ok(body),
        code => Err(WechatError::Api {
            code,
            message: body["errmsg"].as_str().unwrap_or_default().to_string(),
        }),
    }
}

/// What a WeChat endpoint answered: JSON (errcode already checked) or an image.
pub enum Reply {
    Json(Value),
    Binary {
        content_type: String,
        bytes: Vec<u8>,
    },
}

impl Reply {
    pub fn json(self) -> Result<Value, WechatError> {
        match self {
            Reply::Json(v) => Ok(v),
            Reply::Binary { .. } => Err(WechatError::Decode("expected JSON, got binary".into())),
        }
    }
}

/// What `jscode2session` returns. The session key never leaves the server.
pub struct Session {
    pub openid: String,
    pub session_key: SecretString,
    pub unionid: Option<String>,
}

pub struct PhoneInfo {
    pub pure_phone_number: String,
    pub country_code: String,
}

#[derive(Clone)]
pub struct WechatClient {
    http: reqwest::Client,
    base_url: String,
    appid: String,
    secret: SecretString,
    cache: Cache,
    retry_base: Duration,
    busy_retries: u32,
}

impl std::fmt::Debug for WechatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatClient")
            .field("base_url", &self.base_url)
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

pub struct ClientOptions {
    pub base_url: String,
    pub appid: String,
    pub secret: SecretString,
    pub timeout: Duration,
    pub retry_base: Duration,
    pub busy_retries: u32,
}

impl WechatClient {
    pub fn new(options: ClientOptions, cache: Cache) -> Result<Self, WechatError> {
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(3)))
            .build()
            .map_err(|e| WechatError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base_url: options.base_url.trim_end_matches('/').to_string(),
            appid: options.appid,
            secret: options.secret,
            cache,
            retry_base: options.retry_base,
            busy_retries: options.busy_retries.max(1),
        })
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    fn token_key(&self) -> String {
        format!("wechat:{}:access_token", self.appid)
    }

    /// One HTTP exchange: errcode checked, -1 retried with exponential backoff.
    async fn exchange(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Reply, WechatError> {
        let mut attempt = 0;
        loop {
            let result = self.exchange_once(request()).await;
            match result {
                Err(e) if e.code() == Some(BUSY) && attempt + 1 < self.busy_retries => {
                    tokio::time::sleep(self.retry_base * 2u32.saturating_pow(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn exchange_once(&self, request: reqwest::RequestBuilder) -> Result<Reply, WechatError> {
        // The URL can carry the secret or the token: reqwest's error text is stripped of it.
        let res = request
            .send()
            .await
            .map_err(|e| WechatError::Transport(e.without_url().to_string()))?;
        let status = res.status();
        if !status.is_success() {
            return Err(WechatError::Status(status.as_u16()));
        }
        let content_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| WechatError::Transport(e.without_url().to_string()))?;
        // Binary endpoints (QR codes) answer errors as JSON with HTTP 200, sometimes with an odd
        // Content-Type: a body that looks like JSON is JSON, whatever the header says.
        let looks_json = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        if looks_json || content_type.contains("json") {
            let body: Value =
                serde_json::from_slice(&bytes).map_err(|e| WechatError::Decode(e.to_string()))?;
            return check(body).map(Reply::Json);
        }
        if content_type.starts_with("image/") {
            return Ok(Reply::Binary {
                content_type,
                bytes: bytes.to_vec(),
            });
        }
        // WeChat has answered JSON as text/plain; anything else is not understood.
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|e| WechatError::Decode(e.to_string()))?;
        check(body).map(Reply::Json)
    }

    /// The shared access token: from the cache, or fetched by exactly one caller across all
    /// instances while the others wait for it to appear.
    pub async fn access_token(&self) -> Result<String, WechatError> {
        let key = self.token_key();
        if let Some(token) = self.cache.get(&key).await? {
            return Ok(token);
        }
        let lock_name = format!("wechat:{}:token-refresh", self.appid);
        let deadline = tokio::time::Instant::now() + TOKEN_WAIT;
        loop {
            if let Some(lock) = self.cache.try_lock(&lock_name, LOCK_LEASE).await? {
                let result = self.fetch_under_lock(&key).await;
                if let Err(e) = self.cache.unlock(lock).await {
                    tracing::warn!(error = %e, "cannot release the token lock; it expires on its own");
                }
                return result;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(token) = self.cache.get(&key).await? {
                return Ok(token);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WechatError::TokenWait);
            }
        }
    }

    async fn fetch_under_lock(&self, key: &str) -> Result<String, WechatError> {
        // Another instance may have fetched while we waited for the lock.
        if let Some(token) = self.cache.get(key).await? {
            return Ok(token);
        }
        let url = format!("{}/cgi-bin/stable_token", self.base_url);
        let body = json!({
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret.expose_secret(),
            "force_refresh": false,
        });
        let answer = self
            .exchange(|| self.http.post(&url).json(&body))
            .await?
            .json()?;
        let token = answer["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| WechatError::Decode("stable_token without access_token".into()))?
            .to_string();
        let expires_in = answer["expires_in"]
            .as_u64()
            .or_else(|| answer["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(300);
        // Keep a margin so a cached token is never used in its last moments; a stable token
        // is always valid for at least 300 s when handed out.
        let ttl = expires_in.saturating_sub(200).max(expires_in / 2).max(1);
        self.cache
            .set(key, &token, Duration::from_secs(ttl))
            .await?;
        tracing::info!(appid = %self.appid, ttl_secs = ttl, "fetched a WeChat access token");
        Ok(token)
    }

    /// Calls a token-protected API. A token error drops the token (only if it is still the one
    /// used, so a fresher one from another instance survives) and retries exactly once.
    async fn call_reply(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, WechatError> {
        let url = format!("{}{}", self.base_url, path);
        let attempt = |token: String| {
            let url = url.clone();
            let method = method.clone();
            async move {
                self.exchange(|| {
                    let req = self
                        .http
                        .request(method.clone(), &url)
                        .query(&[("access_token", token.as_str())]);
                    match body {
                        Some(b) => req.json(b),
                        None => req,
                    }
                })
                .await
            }
        };
        let token = self.access_token().await?;
        match attempt(token.clone()).await {
            Err(e) if e.is_token_error() => {
                tracing::info!(
                    code = e.code(),
                    "WeChat rejected the access token; fetching another"
                );
                self.cache.delete_if_eq(&self.token_key(), &token).await?;
                let fresh = self.access_token().await?;
                attempt(fresh).await
            }
            other => other,
        }
    }

    /// A token-protected JSON API.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, WechatError> {
        self.call_reply(method, path, body).await?.json()
    }

    /// `jscode2session`: exchanges a `wx.login` code for the member's openid and session key.
    pub async fn code2session(&self, js_code: &str) -> Result<Session, WechatError> {
        let url = format!("{}/sns/jscode2session", self.base_url);
        let answer = self
            .exchange(|| {
                self.http.get(&url).query(&[
                    ("appid", self.appid.as_str()),
                    ("secret", self.secret.expose_secret()),
                    ("js_code", js_code),
                    ("grant_type", "authorization_code"),
                ])
            })
            .await?
            .json()?;
        let field = |name: &str| {
            answer[name]
                .as_str()
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(Session {
            openid: field("openid")
                .ok_or_else(|| WechatError::Decode("jscode2session without openid".into()))?,
            session_key: SecretString::from(field("session_key").unwrap_or_default()),
            unionid: field("unionid"),
        })
    }

    /// `getuserphonenumber`: the phone behind a getPhoneNumber button code.
    pub async fn phone_number(&self, code: &str) -> Result<PhoneInfo, WechatError> {
        let answer = self
            .call(
                reqwest::Method::POST,
                "/wxa/business/getuserphonenumber",
                Some(&json!({ "code": code })),
            )
            .await?;
        let info = &answer["phone_info"];
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        if info["watermark"]["appid"].as_str() != Some(self.appid.as_str()) {
            return Err(WechatError::Decode(
                "phone_info watermark is for another appid".into(),
            ));
        }
        Ok(PhoneInfo {
            pure_phone_number: text(&info["purePhoneNumber"]),
            country_code: text(&info["countryCode"]),
        })
    }

    /// `getwxacodeunlimit`: the image of a mini-program code for `scene`, or the error WeChat
    /// answered (as JSON with HTTP 200), never an "image" made of an error.
    pub async fn unlimited_qrcode(
        &self,
        scene: &str,
        page: &str,
    ) -> Result<(String, Vec<u8>), WechatError> {
        let body = json!({"scene": scene, "page": page, "check_path": false, "width": 430});
        match self
            .call_reply(reqwest::Method::POST, "/wxa/getwxacodeunlimit", Some(&body))
            .await?
        {
            Reply::Binary {
                content_type,
                bytes,
            } => Ok((content_type, bytes)),
            Reply::Json(_) => Err(WechatError::Decode(
                "getwxacodeunlimit answered JSON without an error".into(),
            )),
        }
    }

    /// `subscribe/send`: one subscribe message; returns WeChat's msgid.
    pub async fn send_subscribe(&self, message: &Value) -> Result<String, WechatError> {
        let answer = self
            .call(
                reqwest::Method::POST,
                "/cgi-bin/message/subscribe/send",
                Some(message),
            )
            .await?;
        Ok(match &answer["msgid"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        })
    }

    /// A cheap token-protected call (the API server list), used to check the whole chain.
    pub async fn ping(&self) -> Result<(), WechatError> {
        self.call(reqwest::Method::GET, "/cgi-bin/get_api_domain_ip", None)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcodes_are_read_as_numbers_strings_or_absent() {
        assert_eq!(errcode_of(&json!({"openid": "x"})).unwrap(), 0);
        assert_eq!(errcode_of(&json!({"errcode": 40029})).unwrap(), 40029);
        assert_eq!(errcode_of(&json!({"errcode": "40029"})).unwrap(), 40029);
        assert!(errcode_of(&json!({"errcode": "oops"})).is_err());
        let err =
            check(json!({"errcode": "40163", "errmsg": "code been used rid: 1"})).unwrap_err();
        assert_eq!(err.code(), Some(40163));
        assert!(check(json!({"errcode": 0, "errmsg": "ok"})).is_ok());
    }

    #[test]
    fn token_errors_and_unavailability_are_classified() {
        let api = |code| WechatError::Api {
            code,
            message: String::new(),
        };
        assert!(api(42001).is_token_error());
        assert!(api(40014).is_token_error());
        assert!(!api(40029).is_token_error());
        assert!(api(-1).is_unavailable());
        assert!(WechatError::Status(502).is_unavailable());
        assert!(!api(40013).is_unavailable());
    }
}
