//! Replays of retried writes. A client sends `Idempotency-Key` with a write it may retry; the
//! first request's response is stored in the same transaction as its effects, and every later
//! request with that key gets the stored response back and changes nothing. The unique index
//! on (scope, key) arbitrates between copies that arrive at the same time: the loser waits for
//! the winner's commit (row lock on PostgreSQL, the write lock on SQLite) and then replays.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use entity::idempotency_key;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, Set,
};
use serde::Serialize;
use serde_json::Value;

use crate::auth::sha256_hex;
use crate::db;
use crate::error::ApiError;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// A well-formed `Idempotency-Key`: 1 to 100 visible ASCII characters.
#[derive(Clone, Debug)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key, if it sent one; a malformed key is a 400.
    pub fn from_request(req: &HttpRequest) -> Result<Option<Self>, ApiError> {
        let Some(raw) = req.headers().get(HEADER) else {
            return Ok(None);
        };
        let value = raw.to_str().unwrap_or("").trim();
        if value.is_empty() || value.len() > 100 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::validation(
                "Idempotency-Key",
                "Idempotency-Key 须为 1-100 个可见 ASCII 字符",
            ));
        }
        Ok(Some(Self(value.to_string())))
    }

    /// Like [`IdempotencyKey::from_request`], for writes that must carry one.
    pub fn required(req: &HttpRequest) -> Result<Self, ApiError> {
        Self::from_request(req)?.ok_or_else(|| {
            ApiError::validation(
                "Idempotency-Key",
                "缺少 Idempotency-Key 请求头，重试时请带上同一个值",
            )
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a write answers: a status and a JSON body, storable for replays.
pub struct Outcome {
    pub status: StatusCode,
    pub body: Value,
}

impl Outcome {
    pub fn new(status: StatusCode, body: &impl Serialize) -> Result<Self, ApiError> {
        Ok(Self {
            status,
            body: serde_json::to_value(body).map_err(ApiError::internal)?,
        })
    }

    fn into_response(self, replayed: bool) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if replayed {
            res.insert_header((REPLAYED_HEADER, "true"));
        }
        res.json(self.body)
    }
}

/// The write: its response, and a value for the caller to act on after the commit (e.g.
/// which cards to refresh); a replay has no such value, because nothing changed.
pub type Work<T> = Box<
    dyn for<'c> FnOnce(
            &'c DatabaseTransaction,
        )
            -> Pin<Box<dyn Future<Output = Result<(Outcome, T), ApiError>> + Send + 'c>>
        + Send,
>;

async fn stored(
    db: &DatabaseConnection,
    scope: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
) -> Result<Option<HttpResponse>, ApiError> {
    let Some(row) = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::Scope.eq(scope))
        .filter(idempotency_key::Column::Key.eq(key.as_str()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if row.fingerprint != fingerprint {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "该 Idempotency-Key 已用于另一个请求",
        ));
    }
    let status = StatusCode::from_u16(row.status_code as u16).unwrap_or(StatusCode::OK);
    let body: Value = serde_json::from_str(&row.response).map_err(ApiError::internal)?;
    Ok(Some(Outcome { status, body }.into_response(true)))
}

/// The stored answer to (scope, key), if this request already ran: lets a handler answer a
/// retry before it takes a shortcut that would answer differently (e.g. a sold-out flag).
pub async fn replay(
    db: &DatabaseConnection,
    scope: &str,
    key: &IdempotencyKey,
    request: &impl Serialize,
) -> Result<Option<HttpResponse>, ApiError> {
    let fingerprint = sha256_hex(&serde_json::to_string(request).map_err(ApiError::internal)?);
    stored(db, scope, key, &fingerprint).await
}

/// Runs `work` in a write transaction once per (scope, key). `request` is what makes two
/// requests "the same": a key reused with another request is a 422. A failed write stores
/// nothing, so a retry runs it again. Returns the response, and `work`'s value when this call
/// ran it (`None` for a replay).
pub async fn once<T: Send + 'static>(
    db: &DatabaseConnection,
    scope: String,
    key: IdempotencyKey,
    request: &impl Serialize,
    work: Work<T>,
) -> Result<(HttpResponse, Option<T>), ApiError> {
    let fingerprint = sha256_hex(&serde_json::to_string(request).map_err(ApiError::internal)?);
    if let Some(replay) = stored(db, &scope, &key, &fingerprint).await? {
        return Ok((replay, None));
    }
    let txn = db::begin_write(db).await?;
    let claim = idempotency_key::ActiveModel {
        scope: Set(scope.clone()),
        key: Set(key.as_str().to_string()),
        fingerprint: Set(fingerprint.clone()),
        status_code: Set(0),
        response: Set(String::new()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let claim = match claim {
        Ok(row) => row,
        Err(e) if db::is_unique_violation(&e) => {
            // Another copy of this request committed first; answer as it did.
            txn.rollback().await.ok();
            return stored(db, &scope, &key, &fingerprint)
                .await?
                .map(|replay| (replay, None))
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("idempotency row vanished")));
        }
        Err(e) => return Err(e.into()),
    };
    let (outcome, value) = match work(&txn).await {
        Ok(done) => done,
        Err(e) => {
            txn.rollback().await.ok();
            return Err(e);
        }
    };
    idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::StatusCode,
            Expr::value(outcome.status.as_u16() as i32),
        )
        .col_expr(
            idempotency_key::Column::Response,
            Expr::value(outcome.body.to_string()),
        )
        .filter(idempotency_key::Column::Id.eq(claim.id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok((outcome.into_response(false), Some(value)))
}
