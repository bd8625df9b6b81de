//! A member of staff binds their own WeChat, so that a campaign's test message reaches them
//! before customers see it. The console asks for a short-lived one-time ticket and shows it as
//! a mini-program code; scanning it opens the mini-program, signed in as the staff member's own
//! WeChat, which hands the ticket back. The ticket lives in the shared cache (by its hash) and
//! is taken by one compare-and-delete, so it binds once.

use std::time::Duration as StdDuration;

use actix_web::{delete, get, post, web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use entity::{staff, wechat_account};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::member::Member;
use crate::auth::sha256_hex;
use crate::auth::staff::Staff;
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;
use crate::{audit, db};

const TICKET_MINUTES: i64 = 10;
/// The mini-program page that takes the ticket (from the code's `scene`).
pub const BIND_PAGE: &str = "pages/staff-bind/index";

fn key(ticket: &str) -> String {
    format!("staff-wechat-bind:{}", sha256_hex(ticket))
}

/// 24 characters: fits a mini-program code's 32-character scene.
fn new_ticket() -> String {
    let bytes: [u8; 18] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct BindingStatus {
    pub bound: bool,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct BindingTicket {
    /// Put in the mini-program code's `scene`; the page hands it to `POST /member/staff-binding`.
    pub ticket: String,
    pub page: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindRequest {
    pub ticket: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct BoundTo {
    /// The staff member this WeChat now belongs to, shown on the page.
    pub staff_display_name: String,
}

/// The staff member's bound mini-program account, if any (and still of this appid).
pub async fn bound_account(
    state: &AppState,
    staff_id: i64,
) -> Result<Option<wechat_account::Model>, ApiError> {
    let Some(account_id) = staff::Entity::find_by_id(staff_id)
        .one(&state.db)
        .await?
        .and_then(|s| s.wechat_account_id)
    else {
        return Ok(None);
    };
    Ok(wechat_account::Entity::find_by_id(account_id)
        .filter(wechat_account::Column::Appid.eq(state.wechat.appid()))
        .one(&state.db)
        .await?)
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_wechat_binding_status",
    responses((status = 200, body = BindingStatus), (status = 401, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/auth/me/wechat-binding")]
pub async fn binding_status(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, ApiError> {
    let bound = bound_account(&state, staff.id).await?.is_some();
    Ok(HttpResponse::Ok().json(BindingStatus { bound }))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_wechat_binding_ticket",
    responses(
        (status = 201, body = BindingTicket),
        (status = 401, body = ErrorEnvelope),
        (status = 503, description = "`cache_unavailable`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/auth/me/wechat-binding")]
pub async fn binding_ticket(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, ApiError> {
    let ticket = new_ticket();
    let ttl = Duration::minutes(TICKET_MINUTES);
    state
        .cache
        .set(
            &key(&ticket),
            &staff.id.to_string(),
            StdDuration::from_secs(u64::try_from(ttl.num_seconds()).unwrap_or(600)),
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "binding ticket not stored");
            ApiError::unavailable("cache_unavailable", "暂时无法生成绑定码，请稍后再试")
        })?;
    Ok(HttpResponse::Created().json(BindingTicket {
        ticket,
        page: BIND_PAGE.to_string(),
        expires_at: state.clock.now() + ttl,
    }))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_wechat_unbind",
    responses((status = 204, description = "No WeChat bound any more"), (status = 401, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[delete("/api/v1/staff/auth/me/wechat-binding")]
pub async fn unbind(state: web::Data<AppState>, staff: Staff) -> Result<HttpResponse, ApiError> {
    let actor = staff.clone();
    db::write(&state.db, move |txn| {
        Box::pin(async move {
            let done = staff::Entity::update_many()
                .col_expr(
                    staff::Column::WechatAccountId,
                    Expr::value(Option::<i64>::None),
                )
                .filter(staff::Column::Id.eq(actor.id))
                .filter(staff::Column::WechatAccountId.is_not_null())
                .exec(txn)
                .await?;
            if done.rows_affected > 0 {
                audit::entry("staff.wechat_unbind")
                    .by(&actor)
                    .target("staff", actor.id)
                    .write(txn)
                    .await?;
            }
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_bind_staff_wechat",
    request_body = BindRequest,
    responses(
        (status = 200, body = BoundTo),
        (status = 400, description = "`invalid_ticket`: unknown, used or expired", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
    ),
    security(("member_bearer" = []))
)]
#[post("/api/v1/member/staff-binding")]
pub async fn bind(
    state: web::Data<AppState>,
    member: Member,
    body: web::Json<BindRequest>,
) -> Result<HttpResponse, ApiError> {
    let invalid =
        || ApiError::bad_request("invalid_ticket", "绑定码无效或已过期，请在后台重新生成");
    let ticket = body.ticket.trim();
    if ticket.is_empty() || ticket.len() > 64 {
        return Err(invalid());
    }
    let k = key(ticket);
    let staff_id = state.cache.get(&k).await.map_err(ApiError::internal)?;
    let Some(staff_id) = staff_id else {
        return Err(invalid());
    };
    // Of two scans of one ticket, one takes it.
    if !state
        .cache
        .delete_if_eq(&k, &staff_id)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(invalid());
    }
    let staff_id: i64 = staff_id.parse().map_err(|_| invalid())?;
    let account_id = member.account_id;
    let bound = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let Some(s) = staff::Entity::find_by_id(staff_id)
                .filter(staff::Column::Active.eq(true))
                .one(txn)
                .await?
            else {
                return Ok::<_, ApiError>(None);
            };
            staff::Entity::update_many()
                .col_expr(staff::Column::WechatAccountId, Expr::value(account_id))
                .filter(staff::Column::Id.eq(staff_id))
                .exec(txn)
                .await?;
            audit::entry("staff.wechat_bind")
                .by_unauthenticated(Some(staff_id), Some(&s.username), None)
                .target("staff", staff_id)
                .store(s.store_id)
                .detail(json!({"wechat_account_id": account_id}))
                .write(txn)
                .await?;
            Ok(Some(s.display_name))
        })
    })
    .await?;
    let staff_display_name = bound.ok_or_else(invalid)?;
    Ok(HttpResponse::Ok().json(BoundTo { staff_display_name }))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(binding_status)
        .service(binding_ticket)
        .service(unbind)
        .service(bind);
}
