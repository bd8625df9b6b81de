//! Staff identity: roles, the one permission table (role x action, with how far each grant
//! reaches), argon2id passwords, console (cookie + CSRF) and script (bearer) sessions, and the
//! `Staff` extractor that every staff handler takes. A handler asks the extractor's value
//! whether an action is allowed; nothing else decides.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, FromRequest, HttpRequest};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use entity::{customer, staff, staff_session, store};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{bearer, random_token, sha256_hex};
use crate::config::StaffSettings;
use crate::error::ApiError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "mh_staff_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// HQ (总部): the whole chain.
    Admin,
    /// Store manager (店长).
    Manager,
    /// Consultant (美学顾问).
    Consultant,
    /// Front desk (前台).
    FrontDesk,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::Manager,
        Role::Consultant,
        Role::FrontDesk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Consultant => "consultant",
            Role::FrontDesk => "front_desk",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Admins belong to the chain, everyone else to exactly one store.
    pub fn needs_store(self) -> bool {
        self != Role::Admin
    }
}

/// What a member of staff may try to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// List, search and open customers (basic fields, masked phone, tags).
    CustomerRead,
    CustomerCreate,
    /// Edit basic fields (name, gender, birthday, phone, source, referrer) and tags.
    CustomerUpdate,
    /// Assign or change the customer's consultant.
    CustomerAssign,
    /// Move a customer to another store (or claim one that has no store yet).
    CustomerTransfer,
    /// Read and write memory notes: sensitive detail.
    CustomerNotes,
    /// See the full phone number: sensitive, audited.
    CustomerRevealPhone,
    StoreRead,
    StoreManage,
    StaffRead,
    StaffManage,
    AuditRead,
    /// Enrol a customer as a member at the desk.
    MemberEnrol,
    /// Record a consumption (and earn its points).
    ConsumptionRecord,
    /// Refund a consumption (and reverse its points).
    ConsumptionRefund,
    /// Add or remove points by hand, with a reason; audited.
    PointsAdjust,
    /// Set a member's tier by hand (a floor until its end date).
    TierOverride,
    /// Edit the tier table.
    TierManage,
    /// Edit the rewards catalogue.
    RewardManage,
    /// Verify (核销) a voucher at the desk.
    VoucherVerify,
    /// Run a nightly job now.
    JobRun,
    /// See member days, their slots and bookings.
    EventRead,
    /// Create, edit, publish and cancel member days and their slots.
    EventManage,
    /// Check a member in for their booking at the desk.
    BookingCheckIn,
    /// Edit the message templates (what WeChat messages say): chain-wide, so admin only.
    TemplateManage,
    /// Switch the birthday and recall automations on or off for a store, with their vouchers.
    AutomationManage,
    /// Create, preview, start, pause, resume and cancel campaigns (a manager: their store's).
    CampaignManage,
    /// Handle members' deletion requests (PIPL): chain-wide, so admin only.
    PrivacyHandle,
}

/// How far a grant reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// Only customers assigned to this consultant, in their store.
    Assigned,
    /// Everything of the staff member's own store.
    Store,
    /// The whole chain.
    Chain,
}

/// The permission table. A (role, action) pair that is not listed is denied.
const PERMISSIONS: &[(Role, Action, Reach)] = {
    use Action::*;
    use Reach::*;
    use Role::*;
    &[
        (Admin, CustomerRead, Chain),
        (Admin, CustomerCreate, Chain),
        (Admin, CustomerUpdate, Chain),
        (Admin, CustomerAssign, Chain),
        (Admin, CustomerTransfer, Chain),
        (Admin, CustomerNotes, Chain),
        (Admin, CustomerRevealPhone, Chain),
        (Admin, StoreRead, Chain),
        (Admin, StoreManage, Chain),
        (Admin, StaffRead, Chain),
        (Admin, StaffManage, Chain),
        (Admin, AuditRead, Chain),
        (Admin, MemberEnrol, Chain),
        (Admin, ConsumptionRecord, Chain),
        (Admin, ConsumptionRefund, Chain),
        (Admin, PointsAdjust, Chain),
        (Admin, TierOverride, Chain),
        (Admin, TierManage, Chain),
        (Admin, RewardManage, Chain),
        (Admin, VoucherVerify, Chain),
        (Admin, JobRun, Chain),
        (Admin, EventRead, Chain),
        (Admin, EventManage, Chain),
        (Admin, BookingCheckIn, Chain),
        (Admin, TemplateManage, Chain),
        (Admin, PrivacyHandle, Chain),
        (Admin, AutomationManage, Chain),
        (Manager, AutomationManage, Store),
        (Admin, CampaignManage, Chain),
        (Manager, CampaignManage, Store),
        (Manager, EventRead, Store),
        (Manager, EventManage, Store),
        (Manager, BookingCheckIn, Store),
        (Consultant, EventRead, Store),
        (FrontDesk, EventRead, Store),
        (FrontDesk, BookingCheckIn, Store),
        (Manager, MemberEnrol, Store),
        (Manager, ConsumptionRecord, Store),
        (Manager, ConsumptionRefund, Store),
        (Manager, PointsAdjust, Store),
        (Manager, TierOverride, Store),
        (Manager, VoucherVerify, Store),
        (Consultant, MemberEnrol, Store),
        (FrontDesk, MemberEnrol, Store),
        (FrontDesk, ConsumptionRecord, Store),
        (FrontDesk, VoucherVerify, Store),
        (Manager, CustomerRead, Store),
        (Manager, CustomerCreate, Store),
        (Manager, CustomerUpdate, Store),
        (Manager, CustomerAssign, Store),
        (Manager, CustomerTransfer, Store),
        (Manager, CustomerNotes, Store),
        (Manager, CustomerRevealPhone, Store),
        (Manager, StoreRead, Chain),
        (Manager, StaffRead, Store),
        (Consultant, CustomerRead, Store),
        (Consultant, CustomerCreate, Store),
        (Consultant, CustomerUpdate, Assigned),
        (Consultant, CustomerNotes, Assigned),
        (Consultant, CustomerRevealPhone, Assigned),
        (Consultant, StoreRead, Chain),
        (FrontDesk, CustomerRead, Store),
        (FrontDesk, CustomerCreate, Store),
        (FrontDesk, CustomerUpdate, Store),
        (FrontDesk, CustomerAssign, Store),
        (FrontDesk, CustomerTransfer, Store),
        (FrontDesk, StoreRead, Chain),
    ]
};

/// The grant of `role` for `action`, if any; `consultant_store_wide` widens a consultant's
/// assigned-only grants to their store (setting `staff.consultant_sees_store_detail`).
pub fn grant(role: Role, action: Action, consultant_store_wide: bool) -> Option<Reach> {
    PERMISSIONS
        .iter()
        .find(|(r, a, _)| *r == role && *a == action)
        .map(|(_, _, reach)| match reach {
            Reach::Assigned if consultant_store_wide => Reach::Store,
            other => *other,
        })
}

/// The calling member of staff, proven by their session, as loaded for this request.
#[derive(Debug, Clone)]
pub struct Staff {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub store_id: Option<i64>,
    pub session_id: i64,
    /// The client's address, for the audit log.
    pub ip: Option<String>,
    consultant_store_wide: bool,
}

fn permission_denied() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "permission_denied",
        "当前角色无权执行此操作",
    )
}

impl Staff {
    /// The reach of the caller's grant for `action`; 403 `permission_denied` without one.
    pub fn require(&self, action: Action) -> Result<Reach, ApiError> {
        grant(self.role, action, self.consultant_store_wide).ok_or_else(permission_denied)
    }

    pub fn can(&self, action: Action) -> bool {
        self.require(action).is_ok()
    }

    /// True when the caller's store is `store_id` (admins: every store).
    pub fn covers_store(&self, store_id: Option<i64>) -> bool {
        match self.role {
            Role::Admin => true,
            _ => store_id.is_some() && store_id == self.store_id,
        }
    }

    /// Checks `action` on one customer. A customer outside the caller's store answers 404, as
    /// if it did not exist, so ids cannot be probed across stores; a consultant acting on a
    /// customer who is not theirs gets 403 `not_assigned`.
    pub fn require_customer(&self, action: Action, c: &customer::Model) -> Result<(), ApiError> {
        let reach = self.require(action)?;
        if reach == Reach::Chain {
            return Ok(());
        }
        if !self.covers_store(c.home_store_id) {
            return Err(ApiError::not_found("顾客"));
        }
        if reach == Reach::Assigned && c.consultant_id != Some(self.id) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_assigned",
                "只能查看或修改分配给自己的顾客的敏感信息",
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- passwords

pub const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_CHARS: usize = 128;

/// A password strong enough for an account that can read members' personal data: at least ten
/// characters from at least three of lower case, upper case, digits and symbols, and not the
/// username.
pub fn check_password_strength(password: &str, username: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(ApiError::validation(
            "password",
            format!("密码长度须为 {MIN_PASSWORD_CHARS} 到 {MAX_PASSWORD_CHARS} 个字符"),
        ));
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if classes < 3 {
        return Err(ApiError::validation(
            "password",
            "密码须包含小写字母、大写字母、数字、符号中的至少三类",
        ));
    }
    let lower = password.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err(ApiError::validation("password", "密码不能包含用户名"));
    }
    Ok(())
}

/// A random password that passes [`check_password_strength`]: 16 characters without the
/// look-alikes (0/O, 1/l/I) that staff would mistype.
pub fn generate_password() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"#%+=@^-_";
    let pick = |set: &[u8]| char::from(set[rand::random_range(0..set.len())]);
    let all: Vec<u8> = [LOWER, UPPER, DIGIT, SYMBOL].concat();
    let mut chars: Vec<char> = vec![pick(LOWER), pick(UPPER), pick(DIGIT), pick(SYMBOL)];
    while chars.len() < 16 {
        chars.push(pick(&all));
    }
    // Fisher-Yates, so the guaranteed classes are not always in front.
    for i in (1..chars.len()).rev() {
        chars.swap(i, rand::random_range(0..=i));
    }
    chars.into_iter().collect()
}

/// The argon2id PHC string of `password` (default parameters: 19 MiB, 2 passes). Runs on the
/// blocking pool: hashing takes tens of milliseconds on purpose.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await
    .map_err(|e| anyhow::anyhow!("hashing task: {e}"))?
    .map_err(ApiError::internal)
}

// Same parameters as real hashes, so checking it costs the same; no password matches it.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$bWVtYmVyaHViLWRlY295$Hn0nSB7FsE0x3QqgbdT7qZ3r2hAvEIaMpBX6NG0U1cw";

/// True when `password` matches the stored hash. With no hash (unknown username) a throwaway
/// hash is checked instead, so a wrong username costs as much time as a wrong password.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DECOY.to_string());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored).ok().is_some_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
        && known
}

// ---------------------------------------------------------------- sessions

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// The console: an HttpOnly cookie plus a CSRF token for every state-changing request.
    #[default]
    Cookie,
    /// Scripts: a token sent as `Authorization: Bearer`.
    Bearer,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::Cookie => "cookie",
            SessionKind::Bearer => "bearer",
        }
    }
}

pub struct OpenedSession {
    pub token: String,
    /// Cookie sessions only.
    pub csrf_token: Option<String>,
    pub expires_at: DateTime<Utc>,
}

pub async fn open_session(
    db: &impl ConnectionTrait,
    staff_id: i64,
    kind: SessionKind,
    ip: Option<String>,
    settings: &StaffSettings,
) -> Result<OpenedSession, DbErr> {
    let token = random_token();
    let csrf_token = (kind == SessionKind::Cookie).then(random_token);
    let now = Utc::now();
    let expires_at = now + secs(settings.session_absolute_secs);
    staff_session::ActiveModel {
        staff_id: Set(staff_id),
        token_hash: Set(sha256_hex(&token)),
        csrf_hash: Set(csrf_token.as_deref().map(sha256_hex)),
        kind: Set(kind.as_str().into()),
        ip: Set(ip),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(OpenedSession {
        token,
        csrf_token,
        expires_at,
    })
}

fn secs(n: u64) -> Duration {
    Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX / 1000))
}

pub async fn revoke_session(db: &impl ConnectionTrait, session_id: i64) -> Result<(), DbErr> {
    staff_session::Entity::update_many()
        .col_expr(staff_session::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(staff_session::Column::Id.eq(session_id))
        .filter(staff_session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every live session of the given accounts (deactivation, password reset, a store
/// closed); `except` keeps the caller's own.
pub async fn revoke_sessions_of(
    db: &impl ConnectionTrait,
    staff_ids: Vec<i64>,
    except: Option<i64>,
) -> Result<u64, DbErr> {
    let mut q = staff_session::Entity::update_many()
        .col_expr(staff_session::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(staff_session::Column::StaffId.is_in(staff_ids))
        .filter(staff_session::Column::RevokedAt.is_null());
    if let Some(keep) = except {
        q = q.filter(staff_session::Column::Id.ne(keep));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// The client's address: the peer, or, when configured to trust the proxy in front, the last
/// `X-Forwarded-For` entry: the one that proxy appended. Entries before it are whatever the
/// client chose to send, so trusting them would let a guesser dodge the per-IP lock.
pub fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> Option<String> {
    if trust_forwarded_for {
        if let Some(last) = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .last()
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 64)
        {
            return Some(last.to_string());
        }
    }
    req.peer_addr().map(|a| a.ip().to_string())
}

enum Credential {
    Bearer(String),
    Cookie(String),
}

fn credential(req: &HttpRequest) -> Option<Credential> {
    // A bearer header wins: a browser never sends one by itself, so it needs no CSRF token.
    if let Some(token) = bearer(req) {
        return Some(Credential::Bearer(token));
    }
    req.cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
        .map(Credential::Cookie)
}

fn session_expired() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "session_expired",
        "登录已过期，请重新登录",
    )
}

fn csrf_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_token_invalid",
        "请求缺少有效的 CSRF 令牌，请刷新页面后重试",
    )
}

async fn authenticate(
    state: &AppState,
    credential: Credential,
    method: Method,
    csrf_header: Option<String>,
    ip: Option<String>,
) -> Result<Staff, ApiError> {
    let settings = &state.settings.staff;
    let (token, via_cookie) = match credential {
        Credential::Bearer(t) => (t, false),
        Credential::Cookie(t) => (t, true),
    };
    let Some(session) = staff_session::Entity::find()
        .filter(staff_session::Column::TokenHash.eq(sha256_hex(&token)))
        .filter(staff_session::Column::RevokedAt.is_null())
        .one(&state.db)
        .await?
    else {
        return Err(ApiError::unauthorized());
    };
    // A cookie only ever authenticates a cookie session, a header a bearer session, so a
    // stolen console token cannot be replayed as a bearer to skip the CSRF check.
    if via_cookie != (session.kind == SessionKind::Cookie.as_str()) {
        return Err(ApiError::unauthorized());
    }
    let now = Utc::now();
    let idle = secs(settings.session_idle_secs);
    if session.expires_at <= now || session.last_seen_at + idle <= now {
        revoke_session(&state.db, session.id).await?;
        return Err(session_expired());
    }
    let safe = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if via_cookie && !safe {
        let expected = session.csrf_hash.as_deref().unwrap_or_default();
        let given = csrf_header.map(|h| sha256_hex(&h)).unwrap_or_default();
        if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return Err(csrf_refused());
        }
    }
    let account = staff::Entity::find_by_id(session.staff_id)
        .one(&state.db)
        .await?
        .filter(|a| a.active)
        .ok_or_else(ApiError::unauthorized)?;
    // Closing a store signs its staff out; this also catches a sign-in that raced the closing.
    if let Some(store_id) = account.store_id {
        let open = store::Entity::find_by_id(store_id)
            .one(&state.db)
            .await?
            .is_some_and(|s| s.active);
        if !open {
            revoke_session(&state.db, session.id).await?;
            return Err(ApiError::unauthorized());
        }
    }
    let role = Role::parse(&account.role)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("unknown role {}", account.role)))?;
    // Sliding idle expiry without a write per request: touch at most every quarter of the
    // idle window (and at least once a minute).
    let touch_after = (idle / 4).min(Duration::seconds(60));
    if now - session.last_seen_at >= touch_after {
        staff_session::Entity::update_many()
            .col_expr(staff_session::Column::LastSeenAt, Expr::value(now))
            .filter(staff_session::Column::Id.eq(session.id))
            .exec(&state.db)
            .await?;
    }
    Ok(Staff {
        id: account.id,
        username: account.username,
        display_name: account.display_name,
        role,
        store_id: account.store_id,
        session_id: session.id,
        ip,
        consultant_store_wide: settings.consultant_sees_store_detail,
    })
}

impl FromRequest for Staff {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let credential = credential(req);
        let method = req.method().clone();
        let csrf = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let ip = state
            .as_ref()
            .and_then(|s| client_ip(req, s.settings.staff.trust_forwarded_for));
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no AppState")))?;
            let credential = credential.ok_or_else(ApiError::unauthorized)?;
            authenticate(&state, credential, method, csrf, ip).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_an_explicit_row_for_reading_customers_and_only_admins_manage() {
        for role in Role::ALL {
            assert!(grant(role, Action::CustomerRead, false).is_some());
            let manages = grant(role, Action::StaffManage, false).is_some();
            assert_eq!(manages, role == Role::Admin, "{role:?}");
            assert_eq!(
                grant(role, Action::AuditRead, false).is_some(),
                role == Role::Admin
            );
        }
        assert_eq!(
            grant(Role::FrontDesk, Action::CustomerRevealPhone, false),
            None
        );
        assert_eq!(grant(Role::FrontDesk, Action::CustomerNotes, true), None);
    }

    #[test]
    fn consultants_reach_only_their_own_customers_unless_widened() {
        assert_eq!(
            grant(Role::Consultant, Action::CustomerNotes, false),
            Some(Reach::Assigned)
        );
        assert_eq!(
            grant(Role::Consultant, Action::CustomerNotes, true),
            Some(Reach::Store)
        );
        assert_eq!(grant(Role::Consultant, Action::CustomerAssign, true), None);
    }

    #[test]
    fn only_the_entry_the_trusted_proxy_appended_counts_as_the_client() {
        use actix_web::test::TestRequest;
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "1.2.3.4, 10.0.0.7"))
            .peer_addr("192.168.1.1:5000".parse().unwrap())
            .to_http_request();
        assert_eq!(client_ip(&req, true).as_deref(), Some("10.0.0.7"));
        assert_eq!(client_ip(&req, false).as_deref(), Some("192.168.1.1"));
    }

    #[test]
    fn password_strength_rules() {
        assert!(check_password_strength("short1A!", "x").is_err());
        assert!(check_password_strength("alllowercaseletters", "x").is_err());
        assert!(check_password_strength("lowerandDIGITS", "x").is_err());
        assert!(check_password_strength("lowerUPPER123", "x").is_ok());
        assert!(check_password_strength("Wang.Lei-2026x", "wang.lei").is_err());
        for _ in 0..50 {
            let p = generate_password();
            assert_eq!(p.chars().count(), 16);
            check_password_strength(&p, "admin").unwrap();
        }
    }

    #[tokio::test]
    async fn argon2id_hashes_verify_and_unknown_users_never_do() {
        let hash = hash_password("Correct-Horse-9".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("Correct-Horse-9".into(), Some(hash.clone())).await);
        assert!(!verify_password("correct-horse-9".into(), Some(hash)).await);
        assert!(!verify_password("anything".into(), None).await);
        // The decoy must parse, or unknown usernames would answer faster than known ones.
        assert!(PasswordHash::new(DECOY).is_ok());
    }
}
