//! Member sessions: an opaque random bearer token handed to the mini-program, stored only as
//! its SHA-256, with an expiry; the `Member` extractor turns a valid token into the member's
//! identity, so a handler can only ever act for the member who called it.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use chrono::{DateTime, Duration, Utc};
use entity::{member_session, wechat_account};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::{bearer, random_token, sha256_hex};
use crate::error::ApiError;
use crate::state::AppState;

/// How long a member stays logged in before the mini-program must call `wx.login` again.
pub const SESSION_DAYS: i64 = 30;

/// The calling member, proven by their bearer token, with their account as it was loaded for
/// this request (handlers read consent and referral code from it instead of loading it again).
#[derive(Debug, Clone)]
pub struct Member {
    pub account_id: i64,
    pub session_id: i64,
    pub session_expires_at: DateTime<Utc>,
    pub account: wechat_account::Model,
}

/// The cache key that maps a session token (by its hash) to the member it belongs to, for the
/// card read that skips the database. Written only after the database accepted the token, and
/// removed when the session ends.
pub fn token_key(token: &str) -> String {
    format!("member-token:{}", sha256_hex(token))
}

/// Remembers that `token` belongs to `member_id` until the session ends (at most an hour, so a
/// session revoked without this key being removed cannot outlive it by much).
pub async fn remember_token(state: &AppState, who: &Member, token: &str, member_id: i64) {
    let left = (who.session_expires_at - Utc::now())
        .num_seconds()
        .clamp(0, 3600);
    if left == 0 {
        return;
    }
    let ttl = std::time::Duration::from_secs(left as u64);
    if let Err(e) = state
        .cache
        .set(&token_key(token), &member_id.to_string(), ttl)
        .await
    {
        tracing::warn!(error = %e, "cannot cache a member token");
    }
}

/// Forgets the token's mapping; call when its session ends.
pub async fn forget_token(state: &AppState, token: &str) {
    if let Err(e) = state.cache.delete(&token_key(token)).await {
        tracing::error!(error = %e, "cannot forget a member token");
    }
}

/// Opens a session for the account; returns the token (shown once) and its expiry.
pub async fn open_session(
    db: &impl ConnectionTrait,
    account_id: i64,
) -> Result<(String, DateTime<Utc>), DbErr> {
    let token = random_token();
    let now = Utc::now();
    let expires_at = now + Duration::days(SESSION_DAYS);
    member_session::ActiveModel {
        wechat_account_id: Set(account_id),
        token_hash: Set(sha256_hex(&token)),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((token, expires_at))
}

pub async fn revoke_session(db: &impl ConnectionTrait, session_id: i64) -> Result<(), DbErr> {
    member_session::Entity::update_many()
        .col_expr(member_session::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(member_session::Column::Id.eq(session_id))
        .filter(member_session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// One round trip: the session and its account together. This runs on every member request,
/// the card read among them, so it is kept to a single indexed query.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Member, ApiError> {
    use sea_orm::{DbBackend, FromQueryResult, Statement};
    let backend = state.db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT a.*, s.id AS session_id, s.expires_at AS session_expires_at \
             FROM member_session s JOIN wechat_account a ON a.id = s.wechat_account_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2"
        }
        _ => {
            "SELECT a.*, s.id AS session_id, s.expires_at AS session_expires_at \
             FROM member_session s JOIN wechat_account a ON a.id = s.wechat_account_id \
             WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?"
        }
    };
    let stmt =
        Statement::from_sql_and_values(backend, sql, [sha256_hex(token).into(), Utc::now().into()]);
    let row = state
        .db
        .query_one_raw(stmt)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let account = wechat_account::Model::from_query_result(&row, "")?;
    let session_id: i64 = row.try_get("", "session_id")?;
    let session_expires_at: DateTime<Utc> = row.try_get("", "session_expires_at")?;
    Ok(Member {
        account_id: account.id,
        session_id,
        session_expires_at,
        account,
    })
}

impl FromRequest for Member {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no AppState")))?;
            let token = token.ok_or_else(ApiError::unauthorized)?;
            authenticate(&state, &token).await
        })
    }
}
