//! The sandbox's users: one-time login and phone codes, subscription quotas, subscribe and
//! official-account sends, user info and QR codes, with WeChat's error codes.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{errcode, Sandbox, TokenQuery, WxErr, WxError, SANDBOX_APPID, SANDBOX_SECRET};
use crate::wechat::keywords;

/// Codes from `wx.login` and the phone button live five minutes and work once.
const CODE_LIFETIME_MINUTES: i64 = 5;

/// The subscribe templates the sandbox knows, with their keywords. In sandbox mode the app
/// offers these to members.
pub const SANDBOX_TEMPLATES: &[(&str, &[&str])] = &[
    ("SBX-BOOKING-CONFIRMED", &["thing1", "time2", "thing3"]),
    ("SBX-BOOKING-REMINDER", &["thing1", "time2", "thing3"]),
    ("SBX-WAITLIST-PROMOTED", &["thing1", "time2", "thing3"]),
    ("SBX-POINTS-EXPIRING", &["number1", "date2", "thing3"]),
    ("SBX-TIER-CHANGED", &["thing1", "date2", "thing3"]),
    ("SBX-BIRTHDAY", &["thing1", "thing2"]),
    ("SBX-RECALL", &["thing1", "thing2"]),
    ("SBX-CARE", &["thing1", "time2"]),
];

// A 1x1 PNG: a real image for the QR endpoint's success path.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

#[derive(Clone, Debug)]
pub(super) struct LoginCode {
    openid: String,
    session_key: String,
    expires_at: DateTime<Utc>,
    used: bool,
    blocked: bool,
}

#[derive(Clone, Debug)]
pub(super) struct PhoneCode {
    phone: String,
    expires_at: DateTime<Utc>,
    used: bool,
}

fn template_keywords(template_id: &str) -> Option<&'static [&'static str]> {
    SANDBOX_TEMPLATES
        .iter()
        .find(|(id, _)| *id == template_id)
        .map(|(_, k)| *k)
}

fn random_session_key() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Sandbox {
    /// Registers a `wx.login` code for a user (the control plane plays the phone).
    pub fn add_login_code(&self, code: &str, openid: &str, unionid: Option<&str>, blocked: bool) {
        let mut st = self.lock();
        st.users
            .insert(openid.to_string(), unionid.map(str::to_string));
        st.login_codes.insert(
            code.to_string(),
            LoginCode {
                openid: openid.to_string(),
                session_key: random_session_key(),
                expires_at: Utc::now() + Duration::minutes(CODE_LIFETIME_MINUTES),
                used: false,
                blocked,
            },
        );
    }

    pub fn add_phone_code(&self, code: &str, phone: &str) {
        self.lock().phone_codes.insert(
            code.to_string(),
            PhoneCode {
                phone: phone.to_string(),
                expires_at: Utc::now() + Duration::minutes(CODE_LIFETIME_MINUTES),
                used: false,
            },
        );
    }

    /// Ages a code past its five minutes.
    pub fn expire_code(&self, code: &str) {
        let mut st = self.lock();
        let past = Utc::now() - Duration::seconds(1);
        if let Some(c) = st.login_codes.get_mut(code) {
            c.expires_at = past;
        }
        if let Some(c) = st.phone_codes.get_mut(code) {
            c.expires_at = past;
        }
    }

    /// The member's subscription choices: accept adds one send (one-time templates).
    pub fn record_subscriptions(&self, openid: &str, results: &[(String, String)]) {
        let mut st = self.lock();
        for (template, status) in results {
            let key = (openid.to_string(), template.clone());
            if status == "accept" {
                *st.quotas.entry(key).or_default() += 1;
            }
        }
    }

    pub fn quota(&self, openid: &str, template_id: &str) -> u32 {
        self.lock()
            .quotas
            .get(&(openid.to_string(), template_id.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// What was sent, oldest first.
    pub fn sent(&self) -> Vec<Value> {
        self.lock().sent.clone()
    }

    fn jscode2session(&self, q: &Code2SessionQuery) -> Result<Value, WxError> {
        let mut st = self.lock();
        match st.apps.get(&q.appid) {
            None => return Err(WxErr(40013, "invalid appid")),
            Some(secret) if *secret != q.secret => return Err(WxErr(40125, "invalid appsecret")),
            Some(_) => {}
        }
        let Some(code) = st.login_codes.get_mut(&q.js_code) else {
            return Err(WxErr(40029, "invalid code"));
        };
        if code.used {
            return Err(WxErr(40163, "code been used"));
        }
        if code.expires_at <= Utc::now() {
            return Err(WxErr(40029, "invalid code"));
        }
        if code.blocked {
            return Err(WxErr(40226, "code blocked"));
        }
        code.used = true;
        let code = code.clone();
        let mut body = json!({"openid": code.openid, "session_key": code.session_key});
        if let Some(Some(unionid)) = st.users.get(&code.openid) {
            body["unionid"] = json!(unionid);
        }
        Ok(body)
    }

    fn phone_number(&self, code: &str) -> Result<Value, WxError> {
        let mut st = self.lock();
        let Some(entry) = st.phone_codes.get_mut(code) else {
            return Err(WxErr(40029, "invalid code"));
        };
        if entry.used || entry.expires_at <= Utc::now() {
            return Err(WxErr(40029, "invalid code"));
        }
        entry.used = true;
        let phone = entry.phone.clone();
        let (cc, pure) = match phone.strip_prefix('+') {
            Some(rest) if !rest.starts_with("86") => (
                rest[..rest.len().min(3)].to_string(),
                rest[rest.len().min(3)..].to_string(),
            ),
            Some(rest) => ("86".to_string(), rest[2..].to_string()),
            None => ("86".to_string(), phone.clone()),
        };
        Ok(json!({
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": if cc == "86" { pure.clone() } else { format!("+{cc}{pure}") },
                "purePhoneNumber": pure,
                // WeChat's own example sends the country code as a number.
                "countryCode": cc.parse::<u32>().map(Value::from).unwrap_or(Value::String(cc)),
                "watermark": {"timestamp": Utc::now().timestamp(), "appid": SANDBOX_APPID}
            }
        }))
    }

    fn subscribe_send(&self, body: &Value) -> Result<(Value, String, String), WxError> {
        let touser = body["touser"].as_str().unwrap_or_default().to_string();
        let template_id = body["template_id"].as_str().unwrap_or_default().to_string();
        let mut st = self.lock();
        if touser.is_empty() || !st.users.contains_key(&touser) {
            return Err(WxErr(40003, "invalid openid"));
        }
        let Some(known_keywords) = template_keywords(&template_id) else {
            return Err(WxErr(40037, "invalid template_id"));
        };
        let Some(data) = body["data"].as_object() else {
            return Err(WxErr(47003, "argument invalid! data is not an object"));
        };
        for (key, item) in data {
            let valid = known_keywords.contains(&key.as_str())
                && item["value"]
                    .as_str()
                    .is_some_and(|v| keywords::check(key, v).is_ok());
            if !valid {
                return Err(WxError(
                    47003,
                    format!("argument invalid! data.{key}.value invalid").into(),
                ));
            }
        }
        if let Some(state) = body["miniprogram_state"].as_str() {
            if !["developer", "trial", "formal"].contains(&state) {
                return Err(WxErr(47003, "argument invalid! miniprogram_state invalid"));
            }
        }
        if let Some(lang) = body["lang"].as_str() {
            if !["zh_CN", "en_US", "zh_HK", "zh_TW"].contains(&lang) {
                return Err(WxErr(47003, "argument invalid! lang invalid"));
            }
        }
        let left = st
            .quotas
            .entry((touser.clone(), template_id.clone()))
            .or_default();
        if *left == 0 {
            return Err(WxErr(43101, "user refuse to accept the msg"));
        }
        *left -= 1;
        let msgid: u64 = rand::random::<u64>() >> 1;
        st.sent.push(json!({
            "touser": touser,
            "template_id": template_id,
            "page": body["page"],
            "data": body["data"],
            "msgid": msgid.to_string(),
            "at": Utc::now().to_rfc3339(),
        }));
        Ok((
            json!({"errcode": 0, "errmsg": "ok", "msgid": msgid}),
            touser,
            template_id,
        ))
    }

    fn qrcode(&self, body: &Value) -> Result<HttpResponse, WxError> {
        let scene = body["scene"].as_str().unwrap_or_default();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "!#$&'()*+,/:;=?@-._~".contains(c);
        if scene.is_empty() || scene.chars().count() > 32 || !scene.chars().all(allowed) {
            return Err(WxErr(
                40169,
                "invalid length for scene, or the data is not json string",
            ));
        }
        if let Some(width) = body["width"].as_i64() {
            if !(280..=1280).contains(&width) {
                return Err(WxErr(40097, "invalid args"));
            }
        }
        if let Some(page) = body["page"].as_str() {
            if page.starts_with('/') || page.contains('?') {
                return Err(WxErr(41030, "invalid page"));
            }
        }
        Ok(HttpResponse::Ok()
            .content_type("image/png")
            .insert_header(("X-Sandbox-Scene", scene.to_string()))
            .body(PNG))
    }
}

#[derive(Deserialize)]
struct Code2SessionQuery {
    #[serde(default)]
    appid: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    js_code: String,
}

async fn jscode2session(sb: web::Data<Sandbox>, q: web::Query<Code2SessionQuery>) -> HttpResponse {
    if let Some(fault) = sb.enter("/sns/jscode2session") {
        return fault;
    }
    match sb.jscode2session(&q) {
        // Success has no errcode, and WeChat has served it as text/plain.
        Ok(body) => HttpResponse::Ok()
            .content_type("text/plain")
            .body(body.to_string()),
        Err(e) => e.respond(),
    }
}

/// What every token-protected JSON API does first: count the call (and play any injected
/// fault), check the token, read the body as JSON.
fn protected(
    sb: &Sandbox,
    path: &str,
    q: &TokenQuery,
    body: &[u8],
) -> Result<Value, Box<HttpResponse>> {
    if let Some(fault) = sb.enter(path) {
        return Err(Box::new(fault));
    }
    let respond = |e: WxError| Box::new(e.respond());
    sb.check_token(q.access_token.as_deref()).map_err(respond)?;
    json_body(body).map_err(respond)
}

/// Parses a JSON body as WeChat does: anything else is 47001.
fn json_body(bytes: &[u8]) -> Result<Value, WxError> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or(WxErr(47001, "data format error"))
}

async fn phone_number(
    sb: web::Data<Sandbox>,
    q: web::Query<TokenQuery>,
    body: web::Bytes,
) -> HttpResponse {
    let body = match protected(&sb, "/wxa/business/getuserphonenumber", &q, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match sb.phone_number(body["code"].as_str().unwrap_or_default()) {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => e.respond(),
    }
}

async fn subscribe_send(
    sb: web::Data<Sandbox>,
    q: web::Query<TokenQuery>,
    body: web::Bytes,
) -> HttpResponse {
    let body = match protected(&sb, "/cgi-bin/message/subscribe/send", &q, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match sb.subscribe_send(&body) {
        Ok((answer, openid, template_id)) => {
            let msgid = answer["msgid"].to_string();
            // Delivery is reported later, as WeChat does, never inside the send call.
            let sb = sb.get_ref().clone();
            tokio::spawn(async move {
                let mut item = Map::new();
                item.insert("TemplateId".into(), json!(template_id));
                item.insert("MsgID".into(), json!(msgid));
                let (code, status) = if sb.delivery_fails(&openid) {
                    ("10002", "fail: user refuse to accept the msg")
                } else {
                    ("0", "success")
                };
                item.insert("ErrorCode".into(), json!(code));
                item.insert("ErrorStatus".into(), json!(status));
                sb.push_event(&openid, "subscribe_msg_sent_event", vec![item])
                    .await;
            });
            HttpResponse::Ok().json(answer)
        }
        Err(e) => e.respond(),
    }
}

/// The 服务号's template ids the sandbox knows, by the channel's default kinds.
pub const SANDBOX_OA_TEMPLATES: [&str; 3] = ["SBX-OA-CARE", "SBX-OA-BOOKING", "SBX-OA-POINTS"];

/// Only the official account's own token may send its template messages (48001 otherwise),
/// only to a follower (43004), only with a known template (40037) and typed values (47003).
async fn template_send(
    sb: web::Data<Sandbox>,
    q: web::Query<TokenQuery>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(fault) = sb.enter("/cgi-bin/message/template/send") {
        return fault;
    }
    match sb.check_token(q.access_token.as_deref()) {
        Ok(appid) if appid == super::SANDBOX_OA_APPID => {}
        Ok(_) => return errcode(48001, "api unauthorized"),
        Err(e) => return e.respond(),
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return e.respond(),
    };
    let touser = body["touser"].as_str().unwrap_or_default().to_string();
    let template_id = body["template_id"].as_str().unwrap_or_default().to_string();
    let mut st = sb.lock();
    match st.oa_followers.get(&touser) {
        Some(f) if f.following => {}
        Some(_) => return errcode(43004, "require subscribe"),
        None => return errcode(40003, "invalid openid"),
    }
    if !SANDBOX_OA_TEMPLATES.contains(&template_id.as_str()) {
        return errcode(40037, "invalid template_id");
    }
    let Some(data) = body["data"].as_object() else {
        return errcode(47001, "data format error");
    };
    for (key, value) in data {
        let text = value["value"].as_str().unwrap_or_default();
        if crate::wechat::keywords::check(key, text).is_err() {
            return errcode(
                47003,
                &format!("argument invalid! data.{key}.value invalid"),
            );
        }
    }
    let msgid: u64 = rand::random::<u32>().into();
    st.sent.push(json!({"channel": "official_account", "touser": touser, "template_id": template_id, "data": body["data"], "miniprogram": body["miniprogram"], "msgid": msgid.to_string()}));
    HttpResponse::Ok().json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid}))
}

#[derive(Deserialize)]
struct UserInfoQuery {
    access_token: Option<String>,
    #[serde(default)]
    openid: String,
}

async fn user_info(sb: web::Data<Sandbox>, q: web::Query<UserInfoQuery>) -> HttpResponse {
    if let Some(fault) = sb.enter("/cgi-bin/user/info") {
        return fault;
    }
    match sb.check_token(q.access_token.as_deref()) {
        Ok(appid) if appid == super::SANDBOX_OA_APPID => {}
        Ok(_) => return errcode(48001, "api unauthorized"),
        Err(e) => return e.respond(),
    }
    let st = sb.lock();
    match st.oa_followers.get(&q.openid).filter(|f| f.following) {
        Some(f) => HttpResponse::Ok().json(json!({
            "subscribe": 1, "openid": q.openid, "unionid": f.unionid,
            "subscribe_time": Utc::now().timestamp(), "subscribe_scene": "ADD_SCENE_QR_CODE"
        })),
        None => HttpResponse::Ok().json(json!({"subscribe": 0, "openid": q.openid})),
    }
}

async fn qrcode(
    sb: web::Data<Sandbox>,
    q: web::Query<TokenQuery>,
    body: web::Bytes,
) -> HttpResponse {
    let json_error = |e: WxError| {
        HttpResponse::Ok()
            .content_type("application/json; encoding=utf-8")
            .body(json!({"errcode": e.0, "errmsg": e.1.as_ref()}).to_string())
    };
    if let Some(fault) = sb.enter("/wxa/getwxacodeunlimit") {
        return fault;
    }
    if let Err(e) = sb.check_token(q.access_token.as_deref()) {
        return json_error(e);
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(_) => return json_error(WxErr(47001, "data format error")),
    };
    match sb.qrcode(&body) {
        Ok(image) => image,
        Err(e) => json_error(e),
    }
}

#[derive(Deserialize)]
struct LoginCodeRequest {
    code: String,
    openid: String,
    unionid: Option<String>,
    #[serde(default)]
    blocked: bool,
}

async fn control_login_code(
    sb: web::Data<Sandbox>,
    req: web::Json<LoginCodeRequest>,
) -> HttpResponse {
    sb.add_login_code(&req.code, &req.openid, req.unionid.as_deref(), req.blocked);
    HttpResponse::Ok().json(json!({"ok": true}))
}

#[derive(Deserialize)]
struct PhoneCodeRequest {
    code: String,
    phone: String,
}

async fn control_phone_code(
    sb: web::Data<Sandbox>,
    req: web::Json<PhoneCodeRequest>,
) -> HttpResponse {
    sb.add_phone_code(&req.code, &req.phone);
    HttpResponse::Ok().json(json!({"ok": true}))
}

#[derive(Deserialize)]
struct SubscribeResult {
    template_id: String,
    status: String,
}

#[derive(Deserialize)]
struct SubscribeRequest {
    openid: String,
    results: Vec<SubscribeResult>,
    #[serde(default)]
    popup_scene: Option<String>,
}

/// The member taps "allow" in the popup: the ledger grows and WeChat pushes the popup event.
async fn control_subscribe(
    sb: web::Data<Sandbox>,
    req: web::Json<SubscribeRequest>,
) -> HttpResponse {
    let results: Vec<(String, String)> = req
        .results
        .iter()
        .map(|r| (r.template_id.clone(), r.status.clone()))
        .collect();
    sb.record_subscriptions(&req.openid, &results);
    let scene = req.popup_scene.clone().unwrap_or_else(|| "0".into());
    let items = results
        .iter()
        .map(|(template, status)| {
            let mut item = Map::new();
            item.insert("TemplateId".into(), json!(template));
            item.insert("SubscribeStatusString".into(), json!(status));
            item.insert("PopupScene".into(), json!(scene));
            item
        })
        .collect();
    let delivery = sb
        .push_event(&req.openid, "subscribe_msg_popup_event", items)
        .await;
    HttpResponse::Ok().json(json!({"ok": true, "push": delivery}))
}

#[derive(Deserialize)]
struct UnsubscribeRequest {
    openid: String,
    template_id: String,
}

/// The member turns a template off in WeChat's settings: quota gone, change event pushed.
async fn control_unsubscribe(
    sb: web::Data<Sandbox>,
    req: web::Json<UnsubscribeRequest>,
) -> HttpResponse {
    sb.lock()
        .quotas
        .insert((req.openid.clone(), req.template_id.clone()), 0);
    let mut item = Map::new();
    item.insert("TemplateId".into(), json!(req.template_id));
    item.insert("SubscribeStatusString".into(), json!("reject"));
    let delivery = sb
        .push_event(&req.openid, "subscribe_msg_change_event", vec![item])
        .await;
    HttpResponse::Ok().json(json!({"ok": true, "push": delivery}))
}

#[derive(Deserialize)]
struct FollowRequest {
    openid: String,
    unionid: Option<String>,
    /// False: the follower leaves (unsubscribe).
    #[serde(default = "following")]
    following: bool,
}

fn following() -> bool {
    true
}

/// Someone follows (or leaves) the 服务号: the account's subscribe (unsubscribe) event is
/// pushed, without the unionid, which `user/info` tells.
async fn control_oa_follow(sb: web::Data<Sandbox>, req: web::Json<FollowRequest>) -> HttpResponse {
    {
        let mut st = sb.lock();
        let unionid = req.unionid.clone().or_else(|| {
            st.oa_followers
                .get(&req.openid)
                .and_then(|f| f.unionid.clone())
        });
        st.oa_followers.insert(
            req.openid.clone(),
            super::OaFollower {
                unionid,
                following: req.following,
            },
        );
    }
    let event = if req.following {
        "subscribe"
    } else {
        "unsubscribe"
    };
    let delivery = sb.push_event(&req.openid, event, Vec::new()).await;
    HttpResponse::Ok().json(json!({"ok": true, "push": delivery}))
}

async fn control_sent(sb: web::Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"sent": sb.sent(), "pushes": sb.lock().pushes.clone()}))
}

async fn control_app(_sb: web::Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "appid": SANDBOX_APPID,
        "secret": SANDBOX_SECRET,
        "templates": SANDBOX_TEMPLATES.iter().map(|(id, k)| json!({"template_id": id, "keywords": k})).collect::<Vec<_>>(),
    }))
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sns/jscode2session", web::get().to(jscode2session))
        .route(
            "/wxa/business/getuserphonenumber",
            web::post().to(phone_number),
        )
        .route(
            "/cgi-bin/message/subscribe/send",
            web::post().to(subscribe_send),
        )
        .route(
            "/cgi-bin/message/template/send",
            web::post().to(template_send),
        )
        .route("/cgi-bin/user/info", web::get().to(user_info))
        .route("/wxa/getwxacodeunlimit", web::post().to(qrcode))
        .route("/control/login-code", web::post().to(control_login_code))
        .route("/control/phone-code", web::post().to(control_phone_code))
        .route("/control/subscribe", web::post().to(control_subscribe))
        .route("/control/unsubscribe", web::post().to(control_unsubscribe))
        .route("/control/oa-follow", web::post().to(control_oa_follow))
        .route("/control/sent", web::get().to(control_sent))
        .route("/control/app", web::get().to(control_app))
        .route("/control/push-format", web::post().to(control_push_format));
}

#[derive(Deserialize)]
struct PushFormatRequest {
    format: super::PushFormat,
}

async fn control_push_format(
    sb: web::Data<Sandbox>,
    req: web::Json<PushFormatRequest>,
) -> HttpResponse {
    sb.set_push_format(req.format);
    HttpResponse::Ok().json(json!({"ok": true}))
}
