//! Staff sign-in and the chain's administration: sessions (login with throttling and lockout,
//! logout, who am I, change my password), stores and staff accounts.

pub mod accounts;
pub mod stores;
pub mod wechat_binding;

use std::time::Duration as StdDuration;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use entity::{staff, store};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::staff::{
    check_password_strength, client_ip, hash_password, open_session, revoke_session,
    verify_password, Role, SessionKind, Staff, SESSION_COOKIE,
};
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;
use crate::{audit, db};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// `cookie` (the console, default) or `bearer` (scripts).
    #[serde(default)]
    pub session: SessionKind,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Null for admins (the whole chain).
    pub store_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub staff: Me,
    pub expires_at: DateTime<Utc>,
    /// Cookie sessions: send it back in `X-CSRF-Token` with every POST, PUT, PATCH and DELETE.
    pub csrf_token: Option<String>,
    /// Bearer sessions: send as `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

fn invalid_credentials(remaining: u32) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "用户名或密码错误",
    )
    .with_detail("remaining_attempts", remaining)
}

fn locked(retry_after: StdDuration) -> ApiError {
    let secs = retry_after.as_secs().max(1);
    let minutes = secs.div_ceil(60);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "login_locked",
        format!("登录失败次数过多，已暂时锁定，请 {minutes} 分钟后再试"),
    )
    .with_detail("retry_after_secs", secs)
}

fn lock_key(kind: &str, who: &str) -> String {
    format!("staff-login:lock:{kind}:{who}")
}

fn fail_key(kind: &str, who: &str) -> String {
    format!("staff-login:fail:{kind}:{who}")
}

/// The longer remaining lock of the username and the IP, if either is locked.
async fn lock_remaining(
    state: &AppState,
    username: &str,
    ip: &str,
) -> Result<Option<StdDuration>, ApiError> {
    let mut longest = None;
    for key in [lock_key("user", username), lock_key("ip", ip)] {
        // Locks are always set with a TTL, so "no TTL" means "no lock".
        if let Some(ttl) = state.cache.ttl(&key).await? {
            longest = Some(longest.map_or(ttl, |l: StdDuration| l.max(ttl)));
        }
    }
    Ok(longest)
}

/// Where a sign-in attempt stands against the limits.
enum Attempt {
    /// Within the limits; the username and the IP have this many more tries in the window
    /// after this one.
    Allowed { left_user: u32, left_ip: u32 },
    /// This attempt reached a limit: it is refused without checking the password, and the
    /// username or IP is now locked.
    Locked,
}

/// Counts the attempt against the username and the IP before the password is checked, so
/// guesses fired at once are all counted before any can be verified; a successful sign-in
/// gives its count back ([`forgive`]). Reaching a limit locks for `lockout_secs`.
async fn count_attempt(state: &AppState, username: &str, ip: &str) -> Result<Attempt, ApiError> {
    let s = &state.settings.staff;
    let window = StdDuration::from_secs(s.failure_window_secs);
    let by_user = state
        .cache
        .incr(&fail_key("user", username), window)
        .await?;
    let by_ip = state.cache.incr(&fail_key("ip", ip), window).await?;
    let mut locked = false;
    for (kind, who, count, max) in [
        ("user", username, by_user, s.max_failures_per_username),
        ("ip", ip, by_ip, s.max_failures_per_ip),
    ] {
        // Only the attempt that crosses the limit sets the lock (and says so once).
        if count > i64::from(max) {
            lock(state, kind, who, username, ip, max).await?;
        }
        locked |= count > i64::from(max);
    }
    if locked {
        return Ok(Attempt::Locked);
    }
    let left = |max: u32, count: i64| u32::try_from((i64::from(max) - count).max(0)).unwrap_or(0);
    Ok(Attempt::Allowed {
        left_user: left(s.max_failures_per_username, by_user),
        left_ip: left(s.max_failures_per_ip, by_ip),
    })
}

/// A successful sign-in was not a failure: the username starts afresh, and the IP gets its
/// count back (an office of staff signing in each morning never locks itself out).
async fn forgive(state: &AppState, username: &str, ip: &str) -> Result<(), ApiError> {
    state.cache.delete(&fail_key("user", username)).await?;
    state.cache.decr(&fail_key("ip", ip)).await?;
    Ok(())
}

/// Locks the username or IP `who` for `lockout_secs`. Its failure counter is cut to the same
/// lifetime (and written first, so it ends just before the lock): when the lock ends, the
/// count starts afresh, while attempts already in flight keep counting above the limit.
async fn lock(
    state: &AppState,
    kind: &str,
    who: &str,
    username: &str,
    ip: &str,
    max: u32,
) -> Result<(), ApiError> {
    let lockout = StdDuration::from_secs(state.settings.staff.lockout_secs);
    state
        .cache
        .set(&fail_key(kind, who), &max.to_string(), lockout)
        .await?;
    if state
        .cache
        .set_nx(&lock_key(kind, who), "1", lockout)
        .await?
    {
        tracing::warn!(lock = kind, "staff sign-in locked after repeated failures");
        audit::entry("staff.login_locked")
            .by_unauthenticated(None, Some(username), Some(ip))
            .detail(json!({"lock": kind, "failures": max}))
            .write(&state.db)
            .await?;
    }
    Ok(())
}

/// Locks whatever this failure used up (the username's or the IP's last try), so the next
/// attempt is refused at once; true when something is now locked.
async fn lock_if_spent(
    state: &AppState,
    username: &str,
    ip: &str,
    left_user: u32,
    left_ip: u32,
) -> Result<bool, ApiError> {
    let s = &state.settings.staff;
    let mut locked = false;
    for (kind, who, left, max) in [
        ("user", username, left_user, s.max_failures_per_username),
        ("ip", ip, left_ip, s.max_failures_per_ip),
    ] {
        if left > 0 {
            continue;
        }
        locked = true;
        lock(state, kind, who, username, ip, max).await?;
    }
    Ok(locked)
}

fn session_cookie(state: &AppState, value: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.staff.cookie_secure)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

#[utoipa::path(
    operation_id = "staff_login",
    tag = "staff",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; cookie sessions also set an HttpOnly SameSite=Strict cookie", body = LoginResponse),
        (status = 401, description = "`invalid_credentials`, with `remaining_attempts`", body = ErrorEnvelope),
        (status = 403, description = "`account_disabled`", body = ErrorEnvelope),
        (status = 429, description = "`login_locked`, with `retry_after_secs`", body = ErrorEnvelope),
    )
)]
#[post("/api/v1/staff/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let username = body.username.trim().to_lowercase();
    if username.is_empty() || username.chars().count() > 50 {
        return Err(ApiError::validation(
            "username",
            "用户名不能为空且不超过 50 个字符",
        ));
    }
    if body.password.is_empty() || body.password.chars().count() > 128 {
        return Err(ApiError::validation(
            "password",
            "密码不能为空且不超过 128 个字符",
        ));
    }
    let ip = client_ip(&req, state.settings.staff.trust_forwarded_for)
        .unwrap_or_else(|| "unknown".into());
    // Checked before the password, so the right password during a lock is refused too.
    if let Some(left) = lock_remaining(&state, &username, &ip).await? {
        return Err(locked(left));
    }
    let (left_user, left_ip) = match count_attempt(&state, &username, &ip).await? {
        Attempt::Allowed { left_user, left_ip } => (left_user, left_ip),
        Attempt::Locked => {
            return Err(locked(StdDuration::from_secs(
                state.settings.staff.lockout_secs,
            )))
        }
    };
    let account = staff::Entity::find()
        .filter(staff::Column::Username.eq(&username))
        .one(&state.db)
        .await?;
    let ok = verify_password(
        body.password,
        account.as_ref().map(|a| a.password_hash.clone()),
    )
    .await;
    let (account, known) = if ok { (account, None) } else { (None, account) };
    let Some(account) = account else {
        // An unknown "username" may well be a password typed into the wrong box: only names
        // of real accounts go into the trail.
        let known = known.as_ref();
        audit::entry("staff.login_failed")
            .by_unauthenticated(
                known.map(|a| a.id),
                known.map(|a| a.username.as_str()),
                Some(&ip),
            )
            .detail(json!({"known_username": known.is_some()}))
            .write(&state.db)
            .await?;
        if lock_if_spent(&state, &username, &ip, left_user, left_ip).await? {
            return Err(locked(StdDuration::from_secs(
                state.settings.staff.lockout_secs,
            )));
        }
        return Err(invalid_credentials(left_user));
    };
    forgive(&state, &username, &ip).await?;
    let store_active = match account.store_id {
        None => true,
        Some(id) => store::Entity::find_by_id(id)
            .one(&state.db)
            .await?
            .is_some_and(|s| s.active),
    };
    if !account.active || !store_active {
        audit::entry("staff.login_refused_disabled")
            .by_unauthenticated(Some(account.id), Some(&account.username), Some(&ip))
            .store(account.store_id)
            .write(&state.db)
            .await?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_disabled",
            "该账号或其门店已停用，请联系总部",
        ));
    }
    let role = Role::parse(&account.role)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("unknown role {}", account.role)))?;
    state.cache.delete(&fail_key("user", &username)).await?;
    let kind = body.session;
    let settings = state.settings.staff.clone();
    let (id, store_id, session_ip) = (account.id, account.store_id, ip.clone());
    let audit_username = account.username.clone();
    let opened = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let opened = open_session(txn, id, kind, Some(session_ip.clone()), &settings).await?;
            audit::entry("staff.login")
                .by_unauthenticated(Some(id), Some(&audit_username), Some(&session_ip))
                .store(store_id)
                .detail(json!({"session": if kind == SessionKind::Cookie { "cookie" } else { "bearer" }}))
                .write(txn)
                .await?;
            Ok::<_, ApiError>(opened)
        })
    })
    .await?;
    tracing::info!(staff_id = account.id, "staff signed in");
    let who = Me {
        id: account.id,
        username: account.username,
        display_name: account.display_name,
        role,
        store_id: account.store_id,
    };
    let mut res = HttpResponse::Ok();
    res.insert_header(("cache-control", "no-store"));
    let body = match kind {
        SessionKind::Cookie => {
            let max_age =
                i64::try_from(state.settings.staff.session_absolute_secs).unwrap_or(i64::MAX);
            res.cookie(session_cookie(&state, opened.token, max_age));
            LoginResponse {
                staff: who,
                expires_at: opened.expires_at,
                csrf_token: opened.csrf_token,
                token: None,
            }
        }
        SessionKind::Bearer => LoginResponse {
            staff: who,
            expires_at: opened.expires_at,
            csrf_token: None,
            token: Some(opened.token),
        },
    };
    Ok(res.json(body))
}

#[utoipa::path(
    operation_id = "staff_logout",
    tag = "staff",
    responses((status = 204, description = "Signed out; the cookie is cleared"), (status = 401, body = ErrorEnvelope), (status = 403, description = "`csrf_token_invalid`", body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/auth/logout")]
pub async fn logout(state: web::Data<AppState>, staff: Staff) -> Result<HttpResponse, ApiError> {
    let session_id = staff.session_id;
    db::write(&state.db, move |txn| {
        Box::pin(async move {
            revoke_session(txn, session_id).await?;
            audit::entry("staff.logout")
                .by(&staff)
                .store(staff.store_id)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent()
        .cookie(session_cookie(&state, String::new(), 0))
        .finish())
}

#[utoipa::path(
    operation_id = "staff_me",
    tag = "staff",
    responses((status = 200, body = Me), (status = 401, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/auth/me")]
pub async fn me(staff: Staff) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        id: staff.id,
        username: staff.username,
        display_name: staff.display_name,
        role: staff.role,
        store_id: staff.store_id,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[utoipa::path(
    operation_id = "staff_change_password",
    tag = "staff",
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every other session of the account ends"),
        (status = 400, description = "`validation_failed` (field `new_password`)", body = ErrorEnvelope),
        (status = 401, description = "`invalid_credentials`: the current password is wrong", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/auth/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = staff::Entity::find_by_id(staff.id)
        .one(&state.db)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if !verify_password(body.current_password, Some(account.password_hash)).await {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "当前密码错误",
        ));
    }
    check_password_strength(&body.new_password, &staff.username).map_err(|_| {
        ApiError::validation(
            "new_password",
            "新密码须至少 10 个字符，包含小写字母、大写字母、数字、符号中的至少三类，且不含用户名",
        )
    })?;
    let hash = hash_password(body.new_password).await?;
    db::write(&state.db, move |txn| {
        Box::pin(async move {
            accounts::set_password_hash(txn, staff.id, hash, Some(staff.session_id)).await?;
            audit::entry("staff.change_password")
                .by(&staff)
                .target("staff", staff.id)
                .store(staff.store_id)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(login)
        .service(logout)
        .service(me)
        .service(change_password)
        .configure(stores::routes)
        .configure(accounts::routes)
        .configure(wechat_binding::routes);
}
