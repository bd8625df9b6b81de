//! Joining (in the mini-program or at the desk, or automatically on a first paid consumption),
//! the member's own card and profile, and the staff view of a member with the manual tier.

use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, Utc};
use entity::{customer, member, wechat_account};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::card::{self, Card};
use super::tiers::TierTable;
use crate::audit;
use crate::auth::bearer;
use crate::auth::member::{authenticate, remember_token, token_key, Member};
use crate::auth::staff::{Action, Staff};
use crate::customers::find_customer;
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;

/// How a member joined.
pub mod via {
    pub const MINI_PROGRAM: &str = "mini_program";
    pub const DESK: &str = "desk";
    pub const AUTO: &str = "auto";
    pub const DEMO: &str = "demo";
}

fn not_member() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_member",
        "您还不是会员，加入后即可查看会员卡",
    )
}

/// Makes the customer a member on the entry tier; returns the member and whether this call
/// created it. Two enrolments racing give one member: the unique customer index arbitrates.
pub async fn enrol(
    txn: &DatabaseTransaction,
    customer_id: i64,
    joined_via: &str,
) -> Result<(member::Model, bool), DbErr> {
    let tiers = TierTable::load(txn).await?;
    let now = Utc::now();
    // A placeholder number until the id is known; the number is derived from the id.
    let placeholder = format!("T{}", &uuid::Uuid::new_v4().simple().to_string()[..18]);
    let inserted = member::Entity::insert(member::ActiveModel {
        customer_id: Set(customer_id),
        member_no: Set(placeholder.clone()),
        tier_id: Set(tiers.entry().id),
        tier_valid_until: Set(None),
        tier_source: Set("join".into()),
        prev_tier_id: Set(None),
        prev_tier_valid_until: Set(None),
        upgrade_consumption_id: Set(None),
        manual_tier_id: Set(None),
        manual_tier_until: Set(None),
        points_balance: Set(0),
        joined_via: Set(joined_via.to_string()),
        joined_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(member::Column::CustomerId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    let existing = member::Entity::find()
        .filter(member::Column::CustomerId.eq(customer_id))
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("member after enrolment".into()))?;
    if inserted == 0 {
        return Ok((existing, false));
    }
    let number = format!("MH{:08}", existing.id);
    member::Entity::update_many()
        .col_expr(member::Column::MemberNo, Expr::value(number.clone()))
        .filter(member::Column::Id.eq(existing.id))
        .filter(member::Column::MemberNo.eq(placeholder))
        .exec(txn)
        .await?;
    Ok((
        member::Model {
            member_no: number,
            ..existing
        },
        true,
    ))
}

pub async fn member_of_customer(
    conn: &impl ConnectionTrait,
    customer_id: i64,
) -> Result<Option<member::Model>, DbErr> {
    member::Entity::find()
        .filter(member::Column::CustomerId.eq(customer_id))
        .one(conn)
        .await
}

/// The calling member's membership; 404 `not_member` before joining.
pub async fn current(state: &AppState, who: &Member) -> Result<member::Model, ApiError> {
    let customer_id = who.account.customer_id.ok_or_else(not_member)?;
    member_of_customer(&state.db, customer_id)
        .await?
        .ok_or_else(not_member)
}

#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The referral code of the member who invited this one (from the share card).
    pub referral_code: Option<String>,
}

#[utoipa::path(
    tag = "member",
    request_body(content = JoinRequest, description = "May be empty"),
    responses(
        (status = 201, description = "Joined: the new card", body = Card),
        (status = 200, description = "Already a member: the card", body = Card),
        (status = 400, description = "`validation_failed`: unknown referral code", body = ErrorEnvelope),
        (status = 403, description = "`consent_required` or `phone_required`", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/join")]
pub async fn join(
    state: web::Data<AppState>,
    who: Member,
    body: Option<web::Json<JoinRequest>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.map(|b| b.into_inner()).unwrap_or_default();
    if who.account.consent_policy_version.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "consent_required",
            "请先阅读并同意隐私政策",
        ));
    }
    let Some(customer_id) = who.account.customer_id else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "phone_required",
            "请先绑定手机号",
        ));
    };
    let referrer = match body
        .referral_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(code) => {
            let account = wechat_account::Entity::find()
                .filter(wechat_account::Column::ReferralCode.eq(code))
                .one(&state.db)
                .await?;
            match account.and_then(|a| a.customer_id) {
                Some(id) if id != customer_id => Some(id),
                _ => return Err(ApiError::validation("referral_code", "推荐码无效")),
            }
        }
    };
    let (m, created) = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let (m, created) = enrol(txn, customer_id, via::MINI_PROGRAM).await?;
            if let (Some(referrer), true) = (referrer, created) {
                // The first introduction counts, and only a friend the customer did not
                // introduce themselves: referrals never run in a circle.
                customer::Entity::update_many()
                    .col_expr(customer::Column::ReferrerId, Expr::value(referrer))
                    .filter(customer::Column::Id.eq(customer_id))
                    .filter(customer::Column::ReferrerId.is_null())
                    .filter(
                        customer::Column::Id.not_in_subquery(
                            sea_orm::sea_query::Query::select()
                                .column(customer::Column::ReferrerId)
                                .from(customer::Entity)
                                .and_where(customer::Column::Id.eq(referrer))
                                .and_where(customer::Column::ReferrerId.is_not_null())
                                .to_owned(),
                        ),
                    )
                    .exec(txn)
                    .await?;
            }
            Ok::<_, ApiError>((m, created))
        })
    })
    .await?;
    if created {
        tracing::info!(member_id = m.id, "member joined in the mini-program");
    }
    card::invalidate(&state.cache, m.id).await;
    let card = card::get(&state, m.id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(card))
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_card",
    responses(
        (status = 200, body = Card),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "`not_member`: join first", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[get("/api/v1/member/me")]
pub async fn me(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let token = bearer(&req).ok_or_else(ApiError::unauthorized)?;
    let json = match card::by_token(&state, &token_key(&token)).await {
        Some(json) => json,
        None => {
            let who = authenticate(&state, &token).await?;
            let m = current(&state, &who).await?;
            let json = card::get_json(&state, m.id).await?;
            remember_token(&state, &who, &token, m.id).await;
            json
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .content_type("application/json")
        .body(json))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub name: Option<String>,
    /// YYYY-MM-DD. A member can set it once; later only staff can change it (it drives the
    /// birthday bonus, so it must not be movable at will).
    pub birthday: Option<NaiveDate>,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_update_profile",
    request_body = ProfilePatch,
    responses(
        (status = 200, body = Card),
        (status = 400, body = ErrorEnvelope),
        (status = 404, description = "`not_member`", body = ErrorEnvelope),
        (status = 409, description = "`birthday_already_set`", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[patch("/api/v1/member/me")]
pub async fn update_profile(
    state: web::Data<AppState>,
    who: Member,
    body: web::Json<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let m = current(&state, &who).await?;
    let body = body.into_inner();
    let name = match body.name.as_deref().map(str::trim) {
        Some(n) if n.is_empty() || n.chars().count() > 30 => {
            return Err(ApiError::validation("name", "姓名须为 1-30 个字符"))
        }
        other => other.map(str::to_string),
    };
    let today = state.settings.loyalty.today();
    if let Some(b) = body.birthday {
        if b > today || b < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) {
            return Err(ApiError::validation("birthday", "生日不正确"));
        }
    }
    let (customer_id, birthday) = (m.customer_id, body.birthday);
    db::write(&state.db, move |txn| {
        Box::pin(async move {
            if let Some(b) = birthday {
                // Set once: only while it is still empty, decided by the statement itself.
                let res = customer::Entity::update_many()
                    .col_expr(customer::Column::Birthday, Expr::value(b))
                    .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
                    .filter(customer::Column::Id.eq(customer_id))
                    .filter(customer::Column::Birthday.is_null())
                    .exec(txn)
                    .await?;
                if res.rows_affected == 0 {
                    return Err(ApiError::conflict(
                        "birthday_already_set",
                        "生日已设置，如需修改请联系门店",
                    ));
                }
            }
            if let Some(n) = name {
                customer::Entity::update_many()
                    .col_expr(customer::Column::Name, Expr::value(n))
                    .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
                    .filter(customer::Column::Id.eq(customer_id))
                    .exec(txn)
                    .await?;
            }
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    card::invalidate(&state.cache, m.id).await;
    Ok(HttpResponse::Ok().json(card::get(&state, m.id).await?))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub customer_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct StaffMemberView {
    pub customer_id: i64,
    pub joined_via: String,
    pub card: Card,
}

/// The member and its customer, checked against the caller's reach for `action`.
pub async fn member_for_staff(
    state: &AppState,
    staff: &Staff,
    action: Action,
    member_id: i64,
) -> Result<(member::Model, customer::Model), ApiError> {
    let m = member::Entity::find_by_id(member_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("会员"))?;
    let c = find_customer(&state.db, m.customer_id).await?;
    staff.require_customer(action, &c).map_err(|e| {
        if e.code() == "not_found" {
            ApiError::not_found("会员")
        } else {
            e
        }
    })?;
    Ok((m, c))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_enrol_member",
    request_body = EnrolRequest,
    responses(
        (status = 201, body = StaffMemberView),
        (status = 200, description = "Already a member", body = StaffMemberView),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/members")]
pub async fn enrol_at_desk(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<EnrolRequest>,
) -> Result<HttpResponse, ApiError> {
    let c = find_customer(&state.db, body.customer_id).await?;
    staff.require_customer(Action::MemberEnrol, &c)?;
    let actor = staff.clone();
    let (m, created) = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let (m, created) = enrol(txn, c.id, via::DESK).await?;
            if created {
                audit::entry("member.enrol")
                    .by(&actor)
                    .target("member", m.id)
                    .store(c.home_store_id)
                    .write(txn)
                    .await?;
            }
            Ok::<_, ApiError>((m, created))
        })
    })
    .await?;
    card::invalidate(&state.cache, m.id).await;
    let view = StaffMemberView {
        customer_id: m.customer_id,
        joined_via: m.joined_via.clone(),
        card: card::get(&state, m.id).await?,
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(view))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_member_detail",
    params(("id" = i64, Path, description = "member id")),
    responses((status = 200, body = StaffMemberView), (status = 404, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/members/{id}")]
pub async fn staff_member_detail(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (m, _) = member_for_staff(&state, &staff, Action::CustomerRead, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(StaffMemberView {
        customer_id: m.customer_id,
        joined_via: m.joined_via.clone(),
        card: card::get(&state, m.id).await?,
    }))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualTierRequest {
    /// The tier code to hold as a floor; null removes the manual tier.
    pub tier_code: Option<String>,
    /// The last day of the manual tier (required with a tier).
    pub until: Option<NaiveDate>,
    pub reason: String,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_set_manual_tier",
    params(("id" = i64, Path, description = "member id")),
    request_body = ManualTierRequest,
    responses((status = 200, body = StaffMemberView), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/members/{id}/manual-tier")]
pub async fn set_manual_tier(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    body: web::Json<ManualTierRequest>,
) -> Result<HttpResponse, ApiError> {
    let (m, c) = member_for_staff(&state, &staff, Action::TierOverride, path.into_inner()).await?;
    let body = body.into_inner();
    let reason = body.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 100 {
        return Err(ApiError::validation(
            "reason",
            "请填写原因（不超过 100 个字符）",
        ));
    }
    let tiers = TierTable::load(&state.db).await?;
    let today = state.settings.loyalty.today();
    let (tier_id, until) = match body.tier_code.as_deref() {
        None => (None, None),
        Some(code) => {
            let t = tiers
                .by_code(code)
                .ok_or_else(|| ApiError::validation("tier_code", "没有这个等级"))?;
            let until = body
                .until
                .filter(|u| *u >= today)
                .ok_or_else(|| ApiError::validation("until", "请填写不早于今天的截止日期"))?;
            (Some(t.id), Some(until))
        }
    };
    let actor = staff.clone();
    let detail = serde_json::json!({"tier_code": body.tier_code, "until": until, "reason": reason});
    let member_id = m.id;
    db::write(&state.db, move |txn| {
        Box::pin(async move {
            member::Entity::update_many()
                .col_expr(member::Column::ManualTierId, Expr::value(tier_id))
                .col_expr(member::Column::ManualTierUntil, Expr::value(until))
                .col_expr(member::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(member::Column::Id.eq(member_id))
                .exec(txn)
                .await?;
            audit::entry("member.manual_tier")
                .by(&actor)
                .target("member", member_id)
                .store(c.home_store_id)
                .detail(detail)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    card::invalidate(&state.cache, member_id).await;
    Ok(HttpResponse::Ok().json(StaffMemberView {
        customer_id: m.customer_id,
        joined_via: m.joined_via,
        card: card::get(&state, member_id).await?,
    }))
}
