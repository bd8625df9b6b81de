//! The sandbox: a stateful stand-in for WeChat's server side (wechat-api.md section 13), so the
//! client is tested against WeChat's rules rather than hand-written stubs. This part covers the
//! access tokens (stable and classic, with their expiry, rotation and invalidation rules) and the
//! token check every protected API performs; `users` the login and phone codes, subscriptions,
//! sends and QR codes; `push` the signed (and, when configured, encrypted) pushes to the app.
//! Fault injection and call counts serve the tests. Mounted under `/__sandbox/wechat` when no
//! appid is configured, or served on its own port by tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

mod push;
mod users;

pub use push::{render, sign, PushFormat, PushTarget, SignedPush, SANDBOX_GH};
pub use users::SANDBOX_TEMPLATES;

/// The appid the sandbox plays when no real one is configured.
pub const SANDBOX_APPID: &str = "wxsandbox000000000";
pub const SANDBOX_SECRET: &str = "sandbox-secret";
/// The 服务号 the sandbox plays beside the mini-program (the second channel).
pub const SANDBOX_OA_APPID: &str = "wxsandboxoa0000000";
pub const SANDBOX_OA_SECRET: &str = "sandbox-oa-secret";

/// Stable tokens are renewed this long before they expire, and a replaced token stays valid this
/// long (both five minutes at WeChat).
const OVERLAP_SECS: i64 = 300;
const FORCE_SPACING_SECS: i64 = 30;
const FORCE_PER_DAY: u32 = 20;
const INVALID_CREDENTIAL: WxError = WxErr(
    40001,
    "invalid credential, access_token is invalid or not latest",
);

#[derive(Clone, Debug)]
struct Token {
    value: String,
    appid: String,
    expires_at: DateTime<Utc>,
    /// When a newer token replaced this one for good ("not latest": 40001 rather than 42001).
    replaced_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct StableState {
    current: Option<Token>,
    last_force: Option<DateTime<Utc>>,
    forced_today: u32,
}

#[derive(Default)]
struct State {
    apps: HashMap<String, String>,
    stable: HashMap<String, StableState>,
    classic_current: HashMap<String, String>,
    /// Every token ever issued with the moment it stops working.
    tokens: HashMap<String, Token>,
    /// path -> queued error codes; `None` count means forever.
    faults: HashMap<String, VecDeque<(i64, Option<u32>)>>,
    calls: HashMap<String, u64>,
    /// WeChat users: openid -> unionid.
    users: HashMap<String, Option<String>>,
    login_codes: HashMap<String, users::LoginCode>,
    phone_codes: HashMap<String, users::PhoneCode>,
    /// (openid, template_id) -> sends left.
    quotas: HashMap<(String, String), u32>,
    sent: Vec<Value>,
    /// Official-account followers, by the account's openid (kept after they leave).
    oa_followers: HashMap<String, OaFollower>,
    push: Option<push::PushTarget>,
    pushes: Vec<Value>,
    /// Users whose messages are reported undelivered.
    failing_deliveries: std::collections::HashSet<String>,
    last_push_time: HashMap<String, i64>,
}

#[derive(Clone, Debug, Default)]
struct OaFollower {
    unionid: Option<String>,
    following: bool,
}

/// WeChat's side, shared by every request to the sandbox.
#[derive(Clone)]
pub struct Sandbox {
    state: Arc<Mutex<State>>,
    token_ttl: Duration,
    http: reqwest::Client,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new(Duration::seconds(7200))
    }
}

/// A WeChat error answer: errcode and errmsg, sent with HTTP 200 as WeChat does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxError(pub i64, pub std::borrow::Cow<'static, str>);

#[allow(non_snake_case)]
const fn WxErr(code: i64, msg: &'static str) -> WxError {
    WxError(code, std::borrow::Cow::Borrowed(msg))
}

impl WxError {
    pub fn respond(self) -> HttpResponse {
        errcode(self.0, &self.1)
    }
}

fn errcode(code: i64, msg: &str) -> HttpResponse {
    // Real errmsgs end with a request id; clients must match on errcode, not text.
    let rid = uuid::Uuid::new_v4().simple().to_string();
    HttpResponse::Ok()
        .json(json!({"errcode": code, "errmsg": format!("{msg} rid: {}", &rid[..24])}))
}

fn new_token() -> String {
    format!(
        "SBX_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sandbox {
    pub fn new(token_ttl: Duration) -> Self {
        let mut state = State::default();
        state
            .apps
            .insert(SANDBOX_APPID.to_string(), SANDBOX_SECRET.to_string());
        state
            .apps
            .insert(SANDBOX_OA_APPID.to_string(), SANDBOX_OA_SECRET.to_string());
        Self {
            state: Arc::new(Mutex::new(state)),
            token_ttl,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters to a test double, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the call and returns an injected error, if one is queued for `path`.
    fn enter(&self, path: &str) -> Option<HttpResponse> {
        let mut st = self.lock();
        *st.calls.entry(path.to_string()).or_default() += 1;
        let queue = st.faults.get_mut(path)?;
        let (code, remaining) = queue.front_mut()?;
        let code = *code;
        match remaining {
            None => {}
            Some(n) => {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    queue.pop_front();
                }
            }
        }
        if (500..600).contains(&code) {
            let status = actix_web::http::StatusCode::from_u16(u16::try_from(code).unwrap_or(500))
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            return Some(HttpResponse::build(status).body("injected gateway fault"));
        }
        Some(errcode(code, "injected fault"))
    }

    /// How many times `path` was called.
    pub fn calls(&self, path: &str) -> u64 {
        self.lock().calls.get(path).copied().unwrap_or(0)
    }

    /// Makes the next `count` calls to `path` (every call when `None`) answer `code`; a code
    /// from 500 to 599 (no WeChat errcode) answers with that HTTP status instead, as a failing
    /// gateway in front of WeChat does.
    pub fn inject_fault(&self, path: &str, code: i64, count: Option<u32>) {
        self.lock()
            .faults
            .entry(path.to_string())
            .or_default()
            .push_back((code, count));
    }

    /// Messages to `openid` are taken but their delivery is reported as failed, as for a user
    /// who blocked the mini-program's messages after accepting.
    pub fn fail_deliveries_to(&self, openid: &str) {
        self.lock().failing_deliveries.insert(openid.to_string());
    }

    fn delivery_fails(&self, openid: &str) -> bool {
        self.lock().failing_deliveries.contains(openid)
    }

    /// Expires every token of `appid` now, as if its lifetime had run out.
    pub fn expire_tokens(&self, appid: &str) {
        let now = Utc::now();
        let mut st = self.lock();
        for token in st.tokens.values_mut().filter(|t| t.appid == appid) {
            token.expires_at = token.expires_at.min(now);
        }
        if let Some(current) = st.stable.get_mut(appid).and_then(|s| s.current.as_mut()) {
            current.expires_at = current.expires_at.min(now);
        }
    }

    /// The check every protected API makes: 41001 missing, 40001 unknown, 42001 expired.
    pub fn check_token(&self, token: Option<&str>) -> Result<String, WxError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(WxErr(41001, "access_token missing"));
        };
        let st = self.lock();
        match st.tokens.get(token) {
            None => Err(INVALID_CREDENTIAL),
            Some(t) if t.replaced_at.is_some_and(|at| at <= Utc::now()) => Err(INVALID_CREDENTIAL),
            Some(t) if t.expires_at <= Utc::now() => Err(WxErr(42001, "access_token expired")),
            Some(t) => Ok(t.appid.clone()),
        }
    }

    fn credentials_ok(st: &State, appid: &str, secret: &str) -> Result<(), WxError> {
        match st.apps.get(appid) {
            None => Err(WxErr(40013, "invalid appid")),
            Some(s) if s != secret => Err(INVALID_CREDENTIAL),
            Some(_) => Ok(()),
        }
    }

    fn stable_token(&self, req: StableTokenRequest) -> HttpResponse {
        if req.grant_type != "client_credential" {
            return errcode(40002, "invalid grant_type");
        }
        let now = Utc::now();
        let ttl = self.token_ttl;
        let mut st = self.lock();
        if let Err(e) = Self::credentials_ok(&st, &req.appid, &req.secret) {
            return e.respond();
        }
        let appid = req.appid.clone();
        let stable = st.stable.entry(appid.clone()).or_default();
        if stable
            .last_force
            .is_some_and(|t| t.date_naive() != now.date_naive())
        {
            stable.forced_today = 0;
        }
        let live = stable.current.clone().filter(|t| t.expires_at > now);
        let issue = |stable: &mut StableState| {
            let token = Token {
                value: new_token(),
                appid: appid.clone(),
                expires_at: now + ttl,
                replaced_at: None,
            };
            stable.current = Some(token.clone());
            token
        };
        let (token, retire) = if req.force_refresh {
            let too_soon = stable
                .last_force
                .is_some_and(|t| now - t < Duration::seconds(FORCE_SPACING_SECS));
            match live {
                // Within 30 s of the last force, WeChat hands back the current token unchanged.
                Some(current) if too_soon => (current, None),
                _ if stable.forced_today >= FORCE_PER_DAY => {
                    return errcode(45009, "reach max api daily quota limit");
                }
                previous => {
                    stable.last_force = Some(now);
                    stable.forced_today += 1;
                    // Force mode invalidates the previous token at once.
                    (issue(stable), previous.map(|p| (p.value, now)))
                }
            }
        } else {
            match live {
                Some(current) if current.expires_at - now > Duration::seconds(OVERLAP_SECS) => {
                    (current, None)
                }
                // In its last five minutes the token is renewed; the old one keeps working
                // until its own expiry, which is at most five minutes away.
                _ => (issue(stable), None),
            }
        };
        if let Some((old, at)) = retire {
            if let Some(t) = st.tokens.get_mut(&old) {
                t.replaced_at = Some(at);
            }
        }
        st.tokens.insert(token.value.clone(), token.clone());
        let expires_in = (token.expires_at - now).num_seconds().max(0);
        HttpResponse::Ok().json(json!({"access_token": token.value, "expires_in": expires_in}))
    }

    fn classic_token(&self, q: ClassicTokenQuery) -> HttpResponse {
        if q.grant_type.as_deref() != Some("client_credential") {
            return errcode(40002, "invalid grant_type");
        }
        let now = Utc::now();
        let mut st = self.lock();
        if let Err(e) = Self::credentials_ok(&st, &q.appid, &q.secret) {
            return e.respond();
        }
        // Each fetch replaces the previous classic token, which dies after a 5-minute grace.
        if let Some(old) = st.classic_current.get(&q.appid).cloned() {
            if let Some(t) = st.tokens.get_mut(&old) {
                t.replaced_at = Some(now + Duration::seconds(OVERLAP_SECS));
            }
        }
        let token = Token {
            value: new_token(),
            appid: q.appid.clone(),
            expires_at: now + self.token_ttl,
            replaced_at: None,
        };
        st.classic_current.insert(q.appid, token.value.clone());
        st.tokens.insert(token.value.clone(), token.clone());
        HttpResponse::Ok()
            .json(json!({"access_token": token.value, "expires_in": self.token_ttl.num_seconds()}))
    }
}

#[derive(Deserialize)]
struct StableTokenRequest {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    appid: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    force_refresh: bool,
}

#[derive(Deserialize)]
struct ClassicTokenQuery {
    grant_type: Option<String>,
    #[serde(default)]
    appid: String,
    #[serde(default)]
    secret: String,
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    pub(crate) access_token: Option<String>,
}

#[derive(Deserialize)]
struct FaultRequest {
    path: String,
    errcode: i64,
    /// Absent: every call from now on.
    count: Option<u32>,
}

#[derive(Deserialize)]
struct ExpireRequest {
    appid: Option<String>,
}

async fn stable_token(sb: web::Data<Sandbox>, body: web::Bytes) -> HttpResponse {
    if let Some(fault) = sb.enter("/cgi-bin/stable_token") {
        return fault;
    }
    // WeChat takes JSON only; a form body is 47001.
    match serde_json::from_slice::<StableTokenRequest>(&body) {
        Ok(req) => sb.stable_token(req),
        Err(_) => errcode(47001, "data format error"),
    }
}

async fn classic_token(sb: web::Data<Sandbox>, q: web::Query<ClassicTokenQuery>) -> HttpResponse {
    if let Some(fault) = sb.enter("/cgi-bin/token") {
        return fault;
    }
    sb.classic_token(q.into_inner())
}

/// `GET /cgi-bin/openapi/quota/get`-like probe used by tests to exercise the token check alone:
/// answers `{"errcode":0}` for a valid token.
async fn token_probe(sb: web::Data<Sandbox>, q: web::Query<TokenQuery>) -> HttpResponse {
    if let Some(fault) = sb.enter("/cgi-bin/get_api_domain_ip") {
        return fault;
    }
    match sb.check_token(q.access_token.as_deref()) {
        Ok(_) => {
            HttpResponse::Ok().json(json!({"errcode": 0, "errmsg": "ok", "ip_list": ["127.0.0.1"]}))
        }
        Err(e) => e.respond(),
    }
}

async fn control_fault(sb: web::Data<Sandbox>, req: web::Json<FaultRequest>) -> HttpResponse {
    sb.inject_fault(&req.path, req.errcode, req.count);
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn control_expire(sb: web::Data<Sandbox>, req: web::Json<ExpireRequest>) -> HttpResponse {
    sb.expire_tokens(req.appid.as_deref().unwrap_or(SANDBOX_APPID));
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn control_calls(sb: web::Data<Sandbox>) -> HttpResponse {
    let calls: HashMap<String, u64> = sb.lock().calls.clone();
    HttpResponse::Ok().json(json!({ "calls": calls }))
}

/// Mounts WeChat's paths and the control plane on `cfg` (under whatever scope it is given).
pub fn configure(sandbox: Sandbox) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(sandbox))
            .route("/cgi-bin/stable_token", web::post().to(stable_token))
            .route("/cgi-bin/token", web::get().to(classic_token))
            .route("/cgi-bin/get_api_domain_ip", web::get().to(token_probe))
            .route("/control/fault", web::post().to(control_fault))
            .route("/control/expire-tokens", web::post().to(control_expire))
            .route("/control/calls", web::get().to(control_calls))
            .configure(users::routes);
    }
}

/// Serves the sandbox on its own port (for tests that run several app instances against one
/// WeChat). Returns the base URL and the server handle.
pub fn serve(sandbox: Sandbox) -> std::io::Result<(String, actix_web::dev::ServerHandle)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().configure(configure(sandbox.clone()))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((format!("http://127.0.0.1:{port}"), handle))
}
