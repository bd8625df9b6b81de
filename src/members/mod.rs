//! The member's own identity in the mini-program: WeChat login, logout, consent (PIPL), phone
//! binding (linking to the customer the clinic already knows instead of creating a twin) and
//! the referral code and QR image. Every handler acts for the calling member only: the member
//! comes from the bearer token, never from the request.

pub mod rights;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use entity::{consent_record, customer, wechat_account};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::member::{open_session, revoke_session, Member};
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::privacy::Phone;
use crate::state::AppState;
use crate::wechat::client::WechatError;

const REFERRAL_PAGE: &str = "pages/index/index";
const QR_CACHE_DAYS: u64 = 30;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The code from `wx.login` (login) or from the getPhoneNumber button (phone).
    pub code: String,
}

impl CodeRequest {
    fn code(&self) -> Result<&str, ApiError> {
        let code = self.code.trim();
        if code.is_empty() || code.len() > 128 {
            return Err(ApiError::validation(
                "code",
                "code 不能为空且不超过 128 个字符",
            ));
        }
        Ok(code)
    }
}

/// Named apart from the staff login answer, so the OpenAPI document shows each its own shape.
#[derive(Serialize, ToSchema)]
#[schema(as = MemberLoginResponse)]
pub struct LoginResponse {
    /// Bearer token for every other member call.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// Whether a phone binding already linked this WeChat account to a customer.
    pub customer_linked: bool,
    /// The membership card once the member has joined; null before.
    pub member: Option<crate::loyalty::card::Card>,
}

/// What went wrong talking to WeChat, in terms the mini-program can act on.
fn wechat_failure(
    e: WechatError,
    code_invalid: (StatusCode, &'static str, &'static str),
) -> ApiError {
    match e.code() {
        Some(40029 | 40163) => ApiError::new(code_invalid.0, code_invalid.1, code_invalid.2),
        Some(40226) => ApiError::new(
            StatusCode::FORBIDDEN,
            "wechat_login_blocked",
            "该微信账号暂时无法登录",
        ),
        _ if e.is_unavailable() => {
            tracing::warn!(error = %e, "WeChat unavailable");
            ApiError::unavailable("wechat_unavailable", "微信服务暂不可用，请稍后再试")
        }
        _ => {
            tracing::error!(error = %e, "WeChat refused a call");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "wechat_error",
                "微信服务返回错误，请稍后再试",
            )
        }
    }
}

fn new_referral_code() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    (0..8)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

#[utoipa::path(
    tag = "member",
    request_body = CodeRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "`wechat_code_invalid`: call wx.login again", body = ErrorEnvelope),
        (status = 403, description = "`wechat_login_blocked`", body = ErrorEnvelope),
        (status = 503, description = "`wechat_unavailable`", body = ErrorEnvelope),
    )
)]
#[post("/api/v1/member/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = body.code()?;
    let session = state.wechat.code2session(code).await.map_err(|e| {
        wechat_failure(
            e,
            (
                StatusCode::UNAUTHORIZED,
                "wechat_code_invalid",
                "登录凭证已失效，请重新登录",
            ),
        )
    })?;
    let appid = state.wechat.appid().to_string();
    let now = Utc::now();
    let session_key_enc = {
        use secrecy::ExposeSecret;
        state.vault.encrypt(session.session_key.expose_secret())
    };
    // One statement: first login creates the account, later ones refresh the session key.
    wechat_account::Entity::insert(wechat_account::ActiveModel {
        appid: Set(appid.clone()),
        openid: Set(session.openid.clone()),
        unionid: Set(session.unionid.clone()),
        session_key_enc: Set(Some(session_key_enc)),
        customer_id: Set(None),
        referral_code: Set(new_referral_code()),
        consent_policy_version: Set(None),
        consent_marketing: Set(false),
        consent_sensitive_health: Set(false),
        consent_at: Set(None),
        created_at: Set(now),
        last_login_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            wechat_account::Column::Appid,
            wechat_account::Column::Openid,
        ])
        .update_columns([
            wechat_account::Column::SessionKeyEnc,
            wechat_account::Column::LastLoginAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(&state.db)
    .await?;
    let account = wechat_account::Entity::find()
        .filter(wechat_account::Column::Appid.eq(&appid))
        .filter(wechat_account::Column::Openid.eq(&session.openid))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("account vanished after upsert")))?;
    if account.unionid.is_none() && session.unionid.is_some() {
        wechat_account::Entity::update_many()
            .col_expr(
                wechat_account::Column::Unionid,
                Expr::value(session.unionid.clone()),
            )
            .filter(wechat_account::Column::Id.eq(account.id))
            .exec(&state.db)
            .await?;
    }
    let (token, expires_at) = open_session(&state.db, account.id).await?;
    tracing::info!(account_id = account.id, "member logged in");
    let member = match account.customer_id {
        Some(customer_id) => {
            match crate::loyalty::membership::member_of_customer(&state.db, customer_id).await? {
                Some(m) => Some(crate::loyalty::card::get(&state, m.id).await?),
                None => None,
            }
        }
        None => None,
    };
    Ok(HttpResponse::Ok().json(LoginResponse {
        token,
        expires_at,
        customer_linked: account.customer_id.is_some(),
        member,
    }))
}

#[utoipa::path(tag = "member", responses((status = 204), (status = 401, body = ErrorEnvelope)), security(("member" = [])))]
#[post("/api/v1/member/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    member: Member,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    revoke_session(&state.db, member.session_id).await?;
    if let Some(token) = crate::auth::bearer(&req) {
        crate::auth::member::forget_token(&state, &token).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// The version of the privacy policy the member read, e.g. `2026-11`.
    pub policy_version: String,
    /// Marketing messages (birthday, recall, offers).
    pub marketing: bool,
    /// Processing of sensitive health data (treatment records).
    pub sensitive_health: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentResponse {
    pub policy_version: String,
    pub marketing: bool,
    pub sensitive_health: bool,
    pub consented_at: DateTime<Utc>,
}

#[utoipa::path(tag = "member", request_body = ConsentRequest, responses((status = 200, body = ConsentResponse), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)), security(("member" = [])))]
#[post("/api/v1/member/consent")]
pub async fn consent(
    state: web::Data<AppState>,
    member: Member,
    body: web::Json<ConsentRequest>,
) -> Result<HttpResponse, ApiError> {
    let version = body.policy_version.trim().to_string();
    if version.is_empty() || version.chars().count() > 20 {
        return Err(ApiError::validation(
            "policy_version",
            "policy_version 不能为空且不超过 20 个字符",
        ));
    }
    let now = Utc::now();
    let (marketing, sensitive) = (body.marketing, body.sensitive_health);
    let v = version.clone();
    db::write(&state.db, move |txn| {
        Box::pin(async move {
            consent_record::ActiveModel {
                wechat_account_id: Set(member.account_id),
                policy_version: Set(v.clone()),
                marketing: Set(marketing),
                sensitive_health: Set(sensitive),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            wechat_account::Entity::update_many()
                .col_expr(wechat_account::Column::ConsentPolicyVersion, Expr::value(v))
                .col_expr(
                    wechat_account::Column::ConsentMarketing,
                    Expr::value(marketing),
                )
                .col_expr(
                    wechat_account::Column::ConsentSensitiveHealth,
                    Expr::value(sensitive),
                )
                .col_expr(wechat_account::Column::ConsentAt, Expr::value(now))
                .filter(wechat_account::Column::Id.eq(member.account_id))
                .exec(txn)
                .await?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(ConsentResponse {
        policy_version: version,
        marketing,
        sensitive_health: sensitive,
        consented_at: now,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct PhoneResponse {
    /// The bound phone, masked (138****1234).
    pub phone_masked: String,
    /// True when the phone matched a customer the clinic already had.
    pub linked_existing_customer: bool,
}

fn already_bound() -> ApiError {
    ApiError::conflict(
        "already_bound",
        "当前微信已绑定其他手机号，如需更换请联系门店",
    )
}

fn phone_taken() -> ApiError {
    ApiError::conflict("phone_bound_elsewhere", "该手机号已绑定其他微信账号")
}

/// A unique index refusing a write here means another account won the race for this phone.
fn taken_or_internal(e: DbErr) -> ApiError {
    if db::is_unique_violation(&e) {
        phone_taken()
    } else {
        e.into()
    }
}

/// Links the account to the customer with this phone, creating the customer if the clinic has
/// none. Unique indexes arbitrate races: one phone, one customer, one WeChat account.
async fn bind_phone(
    txn: &DatabaseTransaction,
    account_id: i64,
    phone_hash: String,
    phone_enc: String,
    phone_masked: String,
) -> Result<bool, ApiError> {
    let account = wechat_account::Entity::find_by_id(account_id)
        .one(txn)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let existing = customer::Entity::find()
        .filter(customer::Column::PhoneHash.eq(&phone_hash))
        .one(txn)
        .await?;
    match (account.customer_id, &existing) {
        (Some(linked), Some(c)) if linked == c.id => return Ok(true),
        (Some(_), _) => {
            return Err(already_bound());
        }
        (None, _) => {}
    }
    let (customer_id, linked_existing) = match existing {
        Some(c) => {
            let holder = wechat_account::Entity::find()
                .filter(wechat_account::Column::CustomerId.eq(c.id))
                .one(txn)
                .await?;
            if holder.is_some() {
                return Err(phone_taken());
            }
            (c.id, true)
        }
        None => {
            let now = Utc::now();
            let created = customer::ActiveModel {
                name: Set(None),
                phone_enc: Set(Some(phone_enc)),
                phone_hash: Set(Some(phone_hash)),
                phone_masked: Set(Some(phone_masked)),
                gender: Set(None),
                birthday: Set(None),
                home_store_id: Set(None),
                source: Set("wechat".into()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await
            .map_err(taken_or_internal)?;
            (created.id, false)
        }
    };
    let linked = wechat_account::Entity::update_many()
        .col_expr(wechat_account::Column::CustomerId, Expr::value(customer_id))
        .filter(wechat_account::Column::Id.eq(account_id))
        .filter(wechat_account::Column::CustomerId.is_null())
        .exec(txn)
        .await
        .map_err(taken_or_internal)?;
    if linked.rows_affected != 1 {
        return Err(already_bound());
    }
    Ok(linked_existing)
}

#[utoipa::path(
    tag = "member",
    request_body = CodeRequest,
    responses(
        (status = 200, body = PhoneResponse),
        (status = 400, description = "`phone_code_invalid`: tap the button again", body = ErrorEnvelope),
        (status = 409, description = "`consent_required`, `phone_bound_elsewhere` or `already_bound`", body = ErrorEnvelope),
        (status = 503, description = "`wechat_unavailable`", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/phone")]
pub async fn bind_phone_number(
    state: web::Data<AppState>,
    member: Member,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = body.code()?;
    if member.account.consent_at.is_none() {
        return Err(ApiError::conflict(
            "consent_required",
            "请先阅读并同意隐私政策",
        ));
    }
    let info = state.wechat.phone_number(code).await.map_err(|e| {
        wechat_failure(
            e,
            (
                StatusCode::BAD_REQUEST,
                "phone_code_invalid",
                "手机号授权已失效，请重新点击授权",
            ),
        )
    })?;
    let phone = Phone::parse(&info.pure_phone_number, &info.country_code).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "wechat_error",
            "微信返回的手机号无法识别",
        )
    })?;
    let hash = state.vault.phone_index(&phone);
    let enc = state.vault.encrypt(phone.as_str());
    let masked = phone.masked();
    let account_id = member.account_id;
    let m = masked.clone();
    let linked_existing = db::write(&state.db, move |txn| {
        Box::pin(async move { bind_phone(txn, account_id, hash, enc, m).await })
    })
    .await?;
    tracing::info!(account_id, linked_existing, "phone bound");
    Ok(HttpResponse::Ok().json(PhoneResponse {
        phone_masked: masked,
        linked_existing_customer: linked_existing,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ReferralResponse {
    /// The member's referral code.
    pub code: String,
    /// The mini-program page a friend opens, with the code.
    pub path: String,
    /// The `scene` of the mini-program code (getwxacodeunlimit).
    pub scene: String,
}

#[utoipa::path(tag = "member", responses((status = 200, body = ReferralResponse), (status = 401, body = ErrorEnvelope)), security(("member" = [])))]
#[get("/api/v1/member/referral")]
pub async fn referral(member: Member) -> Result<HttpResponse, ApiError> {
    let code = member.account.referral_code;
    Ok(HttpResponse::Ok().json(ReferralResponse {
        path: format!("{REFERRAL_PAGE}?ref={code}"),
        scene: format!("r={code}"),
        code,
    }))
}

#[utoipa::path(
    tag = "member",
    responses(
        (status = 200, description = "The mini-program code image", content_type = "image/png"),
        (status = 502, description = "`wechat_error`: WeChat answered an error instead of an image", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[get("/api/v1/member/referral/qrcode")]
pub async fn referral_qrcode(
    state: web::Data<AppState>,
    member: Member,
) -> Result<HttpResponse, ApiError> {
    let code = member.account.referral_code;
    // Mini-program codes never expire, so one fetch per member serves every later view.
    let key = format!("wechat:{}:qrcode:{code}", state.wechat.appid());
    if let Some(cached) = state.cache.get_json::<(String, String)>(&key).await? {
        if let Ok(bytes) = B64.decode(&cached.1) {
            return Ok(HttpResponse::Ok().content_type(cached.0).body(bytes));
        }
    }
    let (content_type, bytes) = state
        .wechat
        .unlimited_qrcode(&format!("r={code}"), REFERRAL_PAGE)
        .await
        .map_err(|e| {
            wechat_failure(
                e,
                (
                    StatusCode::BAD_GATEWAY,
                    "wechat_error",
                    "小程序码生成失败，请稍后再试",
                ),
            )
        })?;
    state
        .cache
        .set_json(
            &key,
            &(content_type.clone(), B64.encode(&bytes)),
            std::time::Duration::from_secs(QR_CACHE_DAYS * 24 * 3600),
        )
        .await?;
    Ok(HttpResponse::Ok().content_type(content_type).body(bytes))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(login)
        .service(logout)
        .service(consent)
        .service(bind_phone_number)
        .service(referral)
        .service(referral_qrcode)
        .configure(rights::routes);
}
