//! A member's own account and their rights under PIPL (DESIGN section 8):
//! - `GET /member/account`: what the mini-program needs before joining (consent given, the
//!   masked phone, whether they are a member) so a new phone does not ask again.
//! - `POST /member/data-export`: a copy of everything held about them, answered at once and
//!   recorded; internal columns (encrypted phone, lookup hash, session key) are left out and the
//!   phone is given in full, since it is theirs.
//! - `POST /member/deletion`: recorded (one open request per account, by a partial unique index),
//!   then carried out by an admin (`/staff/privacy-requests`): personal fields anonymised and
//!   sessions ended, while consumptions, points and vouchers stay for the books.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use entity::{
    booking, consent_record, consumption, customer, customer_note, member, member_session,
    points_entry, privacy_request, voucher, wechat_account,
};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::auth::member::Member;
use crate::auth::staff::{Action, Staff};
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;
use crate::{audit, db};

pub mod kind {
    pub const EXPORT: &str = "export";
    pub const DELETION: &str = "deletion";
}

pub mod status {
    pub const RECEIVED: &str = "received";
    pub const COMPLETED: &str = "completed";
    pub const REJECTED: &str = "rejected";
}

/// Rows of each kind an export carries at most (a member's history is far shorter).
const EXPORT_LIMIT: u64 = 5_000;

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ConsentView {
    pub policy_version: String,
    pub marketing: bool,
    pub sensitive_health: bool,
    pub consented_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Null until the member consented to the privacy policy.
    pub consent: Option<ConsentView>,
    /// The bound phone, masked (138****1234); null before binding.
    pub phone_masked: Option<String>,
    pub customer_linked: bool,
    pub is_member: bool,
    pub referral_code: String,
    /// An open deletion request, if any.
    pub deletion_requested_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    pub request_id: i64,
    /// `export` or `deletion`.
    pub kind: String,
    /// `received`, `completed` or `rejected`.
    pub status: String,
    pub requested_at: DateTime<Utc>,
    pub handled_at: Option<DateTime<Utc>>,
}

impl From<&privacy_request::Model> for RequestView {
    fn from(r: &privacy_request::Model) -> Self {
        Self {
            request_id: r.id,
            kind: r.kind.clone(),
            status: r.status.clone(),
            requested_at: r.requested_at,
            handled_at: r.handled_at,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ExportAnswer {
    #[serde(flatten)]
    pub request: RequestView,
    /// Everything held about the member, by kind of record.
    #[schema(value_type = Object)]
    pub data: Value,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_account",
    responses((status = 200, body = AccountView), (status = 401, body = ErrorEnvelope)),
    security(("member" = []))
)]
#[get("/api/v1/member/account")]
pub async fn account_view(
    state: web::Data<AppState>,
    who: Member,
) -> Result<HttpResponse, ApiError> {
    let a = &who.account;
    let customer = match a.customer_id {
        Some(id) => customer::Entity::find_by_id(id).one(&state.db).await?,
        None => None,
    };
    let is_member = match a.customer_id {
        Some(id) => member::Entity::find()
            .filter(member::Column::CustomerId.eq(id))
            .one(&state.db)
            .await?
            .is_some(),
        None => false,
    };
    let open_deletion = privacy_request::Entity::find()
        .filter(privacy_request::Column::WechatAccountId.eq(a.id))
        .filter(privacy_request::Column::Kind.eq(kind::DELETION))
        .filter(privacy_request::Column::Status.eq(status::RECEIVED))
        .one(&state.db)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(AccountView {
            consent: a.consent_policy_version.clone().map(|v| ConsentView {
                policy_version: v,
                marketing: a.consent_marketing,
                sensitive_health: a.consent_sensitive_health,
                consented_at: a.consent_at,
            }),
            phone_masked: customer.and_then(|c| c.phone_masked),
            customer_linked: a.customer_id.is_some(),
            is_member,
            referral_code: a.referral_code.clone(),
            deletion_requested_at: open_deletion.map(|r| r.requested_at),
        }))
}

/// Rows as JSON objects without the columns named in `drop`.
fn rows(values: Vec<Value>, drop: &[&str]) -> Value {
    Value::Array(
        values
            .into_iter()
            .map(|mut v| {
                if let Some(o) = v.as_object_mut() {
                    for k in drop {
                        o.remove(*k);
                    }
                }
                v
            })
            .collect(),
    )
}

/// Everything held about the account and its customer.
async fn collect(
    state: &AppState,
    db: &impl ConnectionTrait,
    account: &wechat_account::Model,
) -> Result<Value, ApiError> {
    let mut data = Map::new();
    let own_account = wechat_account::Entity::find_by_id(account.id)
        .into_json()
        .all(db)
        .await?;
    data.insert(
        "wechat_account".into(),
        rows(own_account, &["session_key_enc", "appid"]),
    );
    let consents = consent_record::Entity::find()
        .filter(consent_record::Column::WechatAccountId.eq(account.id))
        .order_by_asc(consent_record::Column::Id)
        .into_json()
        .all(db)
        .await?;
    data.insert("consents".into(), Value::Array(consents));
    let Some(customer_id) = account.customer_id else {
        return Ok(Value::Object(data));
    };
    let mut profile = customer::Entity::find_by_id(customer_id)
        .into_json()
        .all(db)
        .await?;
    let phone = match customer::Entity::find_by_id(customer_id).one(db).await? {
        Some(c) => c
            .phone_enc
            .as_deref()
            .map(|enc| state.vault.decrypt(enc))
            .transpose()
            .map_err(ApiError::internal)?,
        None => None,
    };
    if let Some(p) = profile.first_mut().and_then(Value::as_object_mut) {
        p.insert("phone".into(), json!(phone));
    }
    data.insert(
        "customer".into(),
        rows(profile, &["phone_enc", "phone_hash", "phone_masked"]),
    );
    let members = member::Entity::find()
        .filter(member::Column::CustomerId.eq(customer_id))
        .into_json()
        .all(db)
        .await?;
    let member_id = members.first().and_then(|m| m["id"].as_i64()).unwrap_or(-1);
    data.insert("member".into(), Value::Array(members));
    let consumptions = consumption::Entity::find()
        .filter(consumption::Column::CustomerId.eq(customer_id))
        .order_by_asc(consumption::Column::Id)
        .limit(EXPORT_LIMIT)
        .into_json()
        .all(db)
        .await?;
    data.insert("consumptions".into(), Value::Array(consumptions));
    let points = points_entry::Entity::find()
        .filter(points_entry::Column::MemberId.eq(member_id))
        .order_by_asc(points_entry::Column::Id)
        .limit(EXPORT_LIMIT)
        .into_json()
        .all(db)
        .await?;
    data.insert("points_entries".into(), Value::Array(points));
    let vouchers = voucher::Entity::find()
        .filter(voucher::Column::CustomerId.eq(customer_id))
        .order_by_asc(voucher::Column::Id)
        .limit(EXPORT_LIMIT)
        .into_json()
        .all(db)
        .await?;
    data.insert("vouchers".into(), Value::Array(vouchers));
    let bookings = booking::Entity::find()
        .filter(booking::Column::MemberId.eq(member_id))
        .order_by_asc(booking::Column::Id)
        .limit(EXPORT_LIMIT)
        .into_json()
        .all(db)
        .await?;
    data.insert("bookings".into(), Value::Array(bookings));
    Ok(Value::Object(data))
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_data_export",
    responses(
        (status = 200, description = "The copy, with the recorded request", body = ExportAnswer),
        (status = 401, body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/data-export")]
pub async fn data_export(
    state: web::Data<AppState>,
    who: Member,
) -> Result<HttpResponse, ApiError> {
    let data = collect(&state, &state.db, &who.account).await?;
    let now = state.clock.now();
    let r = privacy_request::Entity::insert(privacy_request::ActiveModel {
        wechat_account_id: Set(who.account_id),
        customer_id: Set(who.account.customer_id),
        kind: Set(kind::EXPORT.into()),
        status: Set(status::COMPLETED.into()),
        requested_at: Set(now),
        handled_at: Set(Some(now)),
        ..Default::default()
    })
    .exec_with_returning(&state.db)
    .await?;
    tracing::info!(
        request_id = r.id,
        account_id = who.account_id,
        "member exported their data"
    );
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(ExportAnswer {
            request: RequestView::from(&r),
            data,
        }))
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_request_deletion",
    responses(
        (status = 202, description = "Recorded; staff carry it out", body = RequestView),
        (status = 200, description = "Already requested: the open request", body = RequestView),
        (status = 401, body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/deletion")]
pub async fn request_deletion(
    state: web::Data<AppState>,
    who: Member,
) -> Result<HttpResponse, ApiError> {
    let inserted = privacy_request::Entity::insert(privacy_request::ActiveModel {
        wechat_account_id: Set(who.account_id),
        customer_id: Set(who.account.customer_id),
        kind: Set(kind::DELETION.into()),
        status: Set(status::RECEIVED.into()),
        requested_at: Set(state.clock.now()),
        ..Default::default()
    })
    // The partial unique index (one open request per account and kind) decides: of two taps,
    // one records the request. No conflict target: SQLite cannot name a partial index's.
    .on_conflict(OnConflict::new().do_nothing().to_owned())
    .exec_without_returning(&state.db)
    .await?;
    let open = privacy_request::Entity::find()
        .filter(privacy_request::Column::WechatAccountId.eq(who.account_id))
        .filter(privacy_request::Column::Kind.eq(kind::DELETION))
        .filter(privacy_request::Column::Status.eq(status::RECEIVED))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("deletion request vanished")))?;
    if inserted > 0 {
        tracing::info!(
            request_id = open.id,
            account_id = who.account_id,
            "member asked for deletion"
        );
        return Ok(HttpResponse::Accepted().json(RequestView::from(&open)));
    }
    Ok(HttpResponse::Ok().json(RequestView::from(&open)))
}

#[derive(Deserialize, IntoParams)]
pub struct RequestQuery {
    /// `received` (default), `completed`, `rejected`.
    pub status: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct StaffRequestView {
    #[serde(flatten)]
    pub request: RequestView,
    pub customer_id: Option<i64>,
    pub note: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct StaffRequestList {
    pub requests: Vec<StaffRequestView>,
}

fn staff_view(r: &privacy_request::Model) -> StaffRequestView {
    StaffRequestView {
        request: RequestView::from(r),
        customer_id: r.customer_id,
        note: r.note.clone(),
    }
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_privacy_requests",
    params(RequestQuery),
    responses(
        (status = 200, body = StaffRequestList),
        (status = 403, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/privacy-requests")]
pub async fn list_requests(
    state: web::Data<AppState>,
    staff: Staff,
    q: web::Query<RequestQuery>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::PrivacyHandle)?;
    let wanted = q.status.as_deref().unwrap_or(status::RECEIVED);
    if ![status::RECEIVED, status::COMPLETED, status::REJECTED].contains(&wanted) {
        return Err(ApiError::validation(
            "status",
            "status 须为 received、completed 或 rejected",
        ));
    }
    let requests = privacy_request::Entity::find()
        .filter(privacy_request::Column::Status.eq(wanted))
        .order_by_asc(privacy_request::Column::RequestedAt)
        .limit(200)
        .all(&state.db)
        .await?
        .iter()
        .map(staff_view)
        .collect();
    Ok(HttpResponse::Ok().json(StaffRequestList { requests }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandleRequest {
    /// `complete` carries the deletion out; `reject` closes it (say why in `note`).
    pub action: String,
    pub note: Option<String>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_handle_privacy_request",
    params(("id" = i64, Path, description = "request id")),
    request_body = HandleRequest,
    responses(
        (status = 200, body = StaffRequestView),
        (status = 400, description = "`validation_failed` (`action`, `note`)", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`request_closed`: already completed or rejected", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/privacy-requests/{id}")]
pub async fn handle_request(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    body: web::Json<HandleRequest>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::PrivacyHandle)?;
    let id = path.into_inner();
    let body = body.into_inner();
    let complete = match body.action.as_str() {
        "complete" => true,
        "reject" => false,
        _ => {
            return Err(ApiError::validation(
                "action",
                "action 须为 complete 或 reject",
            ))
        }
    };
    let note = body
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(ApiError::validation("note", "备注不超过 200 个字符"));
    }
    if !complete && note.is_none() {
        return Err(ApiError::validation("note", "拒绝时请说明原因"));
    }
    let now = state.clock.now();
    let actor = staff.clone();
    let done = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let r = privacy_request::Entity::find_by_id(id)
                .one(txn)
                .await?
                .filter(|r| r.kind == kind::DELETION)
                .ok_or_else(|| ApiError::not_found("申请"))?;
            // Of two admins handling one request, one does.
            let claimed = privacy_request::Entity::update_many()
                .col_expr(
                    privacy_request::Column::Status,
                    Expr::value(if complete {
                        status::COMPLETED
                    } else {
                        status::REJECTED
                    }),
                )
                .col_expr(privacy_request::Column::HandledAt, Expr::value(now))
                .col_expr(privacy_request::Column::HandledBy, Expr::value(actor.id))
                .col_expr(privacy_request::Column::Note, Expr::value(note.clone()))
                .filter(privacy_request::Column::Id.eq(id))
                .filter(privacy_request::Column::Status.eq(status::RECEIVED))
                .exec(txn)
                .await?;
            if claimed.rows_affected == 0 {
                return Err(ApiError::conflict("request_closed", "该申请已处理"));
            }
            if complete {
                anonymise(txn, &r, now).await?;
            }
            audit::entry(if complete {
                "privacy.deletion_complete"
            } else {
                "privacy.deletion_reject"
            })
            .by(&actor)
            .target("customer", r.customer_id.unwrap_or_default())
            .detail(json!({"request_id": id}))
            .write(txn)
            .await?;
            privacy_request::Entity::find_by_id(id)
                .one(txn)
                .await?
                .ok_or_else(|| ApiError::not_found("申请"))
        })
    })
    .await?;
    if complete {
        if let Some(customer_id) = done.customer_id {
            if let Some(m) =
                crate::loyalty::membership::member_of_customer(&state.db, customer_id).await?
            {
                crate::loyalty::card::invalidate(&state.cache, m.id).await;
            }
        }
    }
    Ok(HttpResponse::Ok().json(staff_view(&done)))
}

/// Personal fields go; what the books need (consumptions, points, vouchers, bookings, the
/// anonymous customer row they hang on) stays. The WeChat account loses its link, consent and
/// sessions, so the member starts afresh if they come back.
async fn anonymise(
    txn: &impl ConnectionTrait,
    r: &privacy_request::Model,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if let Some(customer_id) = r.customer_id {
        customer::Entity::update_many()
            .col_expr(customer::Column::Name, Expr::value(Option::<String>::None))
            .col_expr(
                customer::Column::PhoneEnc,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                customer::Column::PhoneHash,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                customer::Column::PhoneMasked,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                customer::Column::Gender,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                customer::Column::Birthday,
                Expr::value(Option::<chrono::NaiveDate>::None),
            )
            .col_expr(customer::Column::UpdatedAt, Expr::value(now))
            .filter(customer::Column::Id.eq(customer_id))
            .exec(txn)
            .await?;
        customer_note::Entity::delete_many()
            .filter(customer_note::Column::CustomerId.eq(customer_id))
            .exec(txn)
            .await?;
    }
    wechat_account::Entity::update_many()
        .col_expr(
            wechat_account::Column::CustomerId,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(
            wechat_account::Column::Unionid,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            wechat_account::Column::ConsentPolicyVersion,
            Expr::value(Option::<String>::None),
        )
        .col_expr(wechat_account::Column::ConsentMarketing, Expr::value(false))
        .col_expr(
            wechat_account::Column::ConsentSensitiveHealth,
            Expr::value(false),
        )
        .filter(wechat_account::Column::Id.eq(r.wechat_account_id))
        .exec(txn)
        .await?;
    member_session::Entity::update_many()
        .col_expr(member_session::Column::RevokedAt, Expr::value(now))
        .filter(member_session::Column::WechatAccountId.eq(r.wechat_account_id))
        .filter(member_session::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(account_view)
        .service(data_export)
        .service(request_deletion)
        .service(list_requests)
        .service(handle_request);
}
