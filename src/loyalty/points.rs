//! The member's points: history, daily check-in, the rules page (generated from the live
//! configuration, so it cannot disagree with the behaviour) and staff adjustments.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{checkin, points_entry};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::add_months;
use super::card;
use super::ledger::{self, source, EntryKind, Posting};
use super::membership::{self, member_for_staff};
use super::tiers::{TierTable, TierView};
use crate::audit;
use crate::auth::member::Member;
use crate::auth::staff::{Action, Staff};
use crate::config::LoyaltySettings;
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::idempotency::{self, IdempotencyKey, Outcome};
use crate::paging;
use crate::state::AppState;

/// The largest single staff adjustment, either way.
const MAX_ADJUST: i64 = 1_000_000;

#[derive(Serialize, ToSchema)]
pub struct EntryView {
    pub id: i64,
    /// earn, spend, expire, reverse, adjust
    pub kind: String,
    /// Positive: points in; negative: points out.
    pub delta: i64,
    pub balance_after: i64,
    /// consumption, refund, referral, referral_reversal, checkin, adjust, redemption,
    /// voucher_cancel, expiry
    pub source: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

impl From<points_entry::Model> for EntryView {
    fn from(e: points_entry::Model) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            delta: e.delta,
            balance_after: e.balance_after,
            source: e.source,
            reason: e.reason,
            created_at: e.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EntryPage {
    pub items: Vec<EntryView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<i64>,
    /// 1-100, default 20.
    pub limit: Option<u64>,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_points_entries",
    params(PageQuery),
    responses((status = 200, body = EntryPage), (status = 401, body = ErrorEnvelope), (status = 404, description = "`not_member`", body = ErrorEnvelope)),
    security(("member" = []))
)]
#[get("/api/v1/member/points/entries")]
pub async fn entries(
    state: web::Data<AppState>,
    who: Member,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    Ok(HttpResponse::Ok().json(entry_page(&state, m.id, &query).await?))
}

async fn entry_page(
    state: &AppState,
    member_id: i64,
    query: &PageQuery,
) -> Result<EntryPage, ApiError> {
    let limit = paging::limit(query.limit, 20, 100)?;
    let (rows, next_cursor) = paging::fetch(
        &state.db,
        points_entry::Entity::find().filter(points_entry::Column::MemberId.eq(member_id)),
        points_entry::Column::Id,
        query.cursor,
        limit,
        |e| e.id,
    )
    .await?;
    Ok(EntryPage {
        items: rows.into_iter().map(EntryView::from).collect(),
        next_cursor,
    })
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_member_points_entries",
    params(("id" = i64, Path, description = "member id"), PageQuery),
    responses((status = 200, body = EntryPage), (status = 404, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/members/{id}/points/entries")]
pub async fn staff_entries(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (m, _) = member_for_staff(&state, &staff, Action::CustomerRead, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(entry_page(&state, m.id, &query).await?))
}

#[derive(Serialize, ToSchema)]
pub struct CheckinView {
    pub date: NaiveDate,
    pub points: i64,
    pub points_balance: i64,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_check_in",
    responses(
        (status = 201, body = CheckinView),
        (status = 404, description = "`not_member`", body = ErrorEnvelope),
        (status = 409, description = "`already_checked_in`: once per business day", body = ErrorEnvelope),
    ),
    security(("member" = []))
)]
#[post("/api/v1/member/checkins")]
pub async fn check_in(state: web::Data<AppState>, who: Member) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let settings = state.settings.loyalty.clone();
    let today = settings.today();
    let member_id = m.id;
    let view = db::write(&state.db, move |txn| {
        Box::pin(async move { record_checkin(txn, &settings, member_id, today).await })
    })
    .await?;
    card::invalidate(&state.cache, member_id).await;
    Ok(HttpResponse::Created().json(view))
}

/// Checks the member in for `date` in the caller's write transaction: once per business day,
/// decided by the unique (member, day) index even when two taps arrive at once.
pub async fn record_checkin(
    txn: &DatabaseTransaction,
    settings: &LoyaltySettings,
    member_id: i64,
    date: NaiveDate,
) -> Result<CheckinView, ApiError> {
    let row = checkin::ActiveModel {
        member_id: Set(member_id),
        business_date: Set(date),
        points: Set(settings.checkin_points),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(|e| {
        if db::is_unique_violation(&e) {
            ApiError::conflict("already_checked_in", "今天已经签到过了，明天再来吧")
        } else {
            e.into()
        }
    })?;
    let mut balance = ledger::lock_member(txn, member_id).await?.points_balance;
    if settings.checkin_points > 0 {
        balance = ledger::credit(
            txn,
            &Posting {
                member_id,
                kind: EntryKind::Earn,
                source: source::CHECKIN,
                ref_id: Some(row.id),
                reason: "每日签到".into(),
                staff_id: None,
            },
            settings.checkin_points,
            date,
            add_months(date, settings.points_validity_months),
        )
        .await?
        .balance_after;
    }
    Ok(CheckinView {
        date,
        points: settings.checkin_points,
        points_balance: balance,
    })
}

#[derive(Serialize, ToSchema)]
pub struct CheckinHistory {
    pub today: NaiveDate,
    pub checked_in_today: bool,
    /// Days checked in over the last 31 days, newest first.
    pub dates: Vec<NaiveDate>,
    pub points_per_checkin: i64,
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_checkins",
    responses((status = 200, body = CheckinHistory), (status = 404, description = "`not_member`", body = ErrorEnvelope)),
    security(("member" = []))
)]
#[get("/api/v1/member/checkins")]
pub async fn checkins(state: web::Data<AppState>, who: Member) -> Result<HttpResponse, ApiError> {
    let m = membership::current(&state, &who).await?;
    let today = state.settings.loyalty.today();
    let dates: Vec<NaiveDate> = checkin::Entity::find()
        .filter(checkin::Column::MemberId.eq(m.id))
        .filter(checkin::Column::BusinessDate.gt(today - chrono::Days::new(31)))
        .order_by_desc(checkin::Column::BusinessDate)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|c| c.business_date)
        .collect();
    Ok(HttpResponse::Ok().json(CheckinHistory {
        today,
        checked_in_today: dates.first() == Some(&today),
        dates,
        points_per_checkin: state.settings.loyalty.checkin_points,
    }))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustRequest {
    /// Points to add (positive) or remove (negative); never zero.
    pub delta: i64,
    /// Why, for the member's history and the audit log.
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct AdjustView {
    pub entry_id: i64,
    pub delta: i64,
    pub points_balance: i64,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_adjust_points",
    params(
        ("id" = i64, Path, description = "member id"),
        ("Idempotency-Key" = String, Header, description = "Required; a retry with the same key and body replays the first answer"),
    ),
    request_body = AdjustRequest,
    responses(
        (status = 201, body = AdjustView),
        (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`insufficient_points`: a removal larger than the balance", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/members/{id}/points/adjust")]
pub async fn adjust(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Json<AdjustRequest>,
) -> Result<HttpResponse, ApiError> {
    let (m, c) = member_for_staff(&state, &staff, Action::PointsAdjust, path.into_inner()).await?;
    let key = IdempotencyKey::required(&req)?;
    let body = body.into_inner();
    if body.delta == 0 || body.delta.unsigned_abs() > MAX_ADJUST.unsigned_abs() {
        return Err(ApiError::validation(
            "delta",
            "调整积分须非 0，且不超过 100 万",
        ));
    }
    let reason = body.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 100 {
        return Err(ApiError::validation(
            "reason",
            "请填写调整原因（不超过 100 个字符）",
        ));
    }
    let settings = state.settings.loyalty.clone();
    let today = settings.today();
    let actor = staff.clone();
    let (member_id, delta) = (m.id, body.delta);
    let (response, adjusted) = idempotency::once(
        &state.db,
        format!("member:{member_id}:adjust"),
        key,
        &body,
        Box::new(move |txn| {
            Box::pin(async move {
                let posting = Posting {
                    member_id,
                    kind: EntryKind::Adjust,
                    source: source::ADJUST,
                    ref_id: None,
                    reason: format!("人工调整：{reason}"),
                    staff_id: Some(actor.id),
                };
                let posted = if delta > 0 {
                    ledger::credit(txn, &posting, delta, today, add_months(today, settings.points_validity_months)).await?
                } else {
                    ledger::debit(txn, &posting, -delta, None, false, today).await?
                };
                audit::entry("points.adjust")
                    .by(&actor)
                    .target("member", member_id)
                    .store(c.home_store_id)
                    .detail(serde_json::json!({"delta": delta, "reason": reason, "balance_after": posted.balance_after}))
                    .write(txn)
                    .await?;
                let view = AdjustView {
                    entry_id: posted.entry_id,
                    delta,
                    points_balance: posted.balance_after,
                };
                Ok((Outcome::new(StatusCode::CREATED, &view)?, ()))
            })
        }),
    )
    .await?;
    if adjusted.is_some() {
        card::invalidate(&state.cache, member_id).await;
    }
    Ok(response)
}

#[derive(Serialize, ToSchema)]
pub struct Bonus {
    /// birthday_month or member_day
    pub kind: String,
    /// 200 means x2.
    pub multiplier_pct: i64,
    /// Member days only: the configured days of the month (member-day events add their own
    /// dates at each store).
    pub days: Vec<u32>,
    pub description: String,
}

#[derive(Serialize, ToSchema)]
pub struct TierRule {
    #[serde(flatten)]
    pub tier: TierView,
    pub description: String,
}

/// The rules as members read them, each part with its figures and a sentence.
#[derive(Serialize, ToSchema)]
pub struct Rules {
    pub points_per_yuan: i64,
    pub earning: String,
    pub bonuses: Vec<Bonus>,
    pub bonus_rule: String,
    pub checkin_points: i64,
    pub checkin: String,
    pub referral_points: i64,
    pub referral_monthly_cap: u32,
    pub referral: String,
    pub points_validity_months: u32,
    pub expiry: String,
    pub spending: String,
    pub refunds: String,
    pub tier_validity_months: u32,
    pub tiers: Vec<TierRule>,
    pub tier_rules: Vec<String>,
}

fn yuan(fen: i64) -> String {
    let y = fen / 100;
    if y >= 10_000 && y % 10_000 == 0 {
        format!("{} 万元", y / 10_000)
    } else {
        format!("{y} 元")
    }
}

fn times(pct: i64) -> String {
    if pct % 100 == 0 {
        format!("{} 倍", pct / 100)
    } else {
        format!("{}.{} 倍", pct / 100, (pct % 100) / 10)
    }
}

#[utoipa::path(
    tag = "member",
    operation_id = "member_rules",
    responses((status = 200, body = Rules))
)]
#[get("/api/v1/member/rules")]
pub async fn rules(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let s = &state.settings.loyalty;
    let tiers = TierTable::load(&state.db).await?;
    let mut bonuses = Vec::new();
    if s.birthday_multiplier_pct > 100 {
        bonuses.push(Bonus {
            kind: "birthday_month".into(),
            multiplier_pct: s.birthday_multiplier_pct,
            days: vec![],
            description: format!("生日当月消费，积分 {}", times(s.birthday_multiplier_pct)),
        });
    }
    if s.member_day_multiplier_pct > 100 {
        let when = if s.member_days.is_empty() {
            "门店会员日活动当天".to_string()
        } else {
            let days: Vec<String> = s.member_days.iter().map(|d| format!("{d} 日")).collect();
            format!("每月 {} 及门店会员日活动当天", days.join("、"))
        };
        bonuses.push(Bonus {
            kind: "member_day".into(),
            multiplier_pct: s.member_day_multiplier_pct,
            days: s.member_days.clone(),
            description: format!("{when}消费，积分 {}", times(s.member_day_multiplier_pct)),
        });
    }
    let tier_rules: Vec<TierRule> = tiers
        .all()
        .iter()
        .map(|t| {
            let view = TierView::from(t);
            let condition = if t.threshold_fen == 0 {
                "入会即享".to_string()
            } else {
                format!("近 12 个月消费满 {}", yuan(t.threshold_fen))
            };
            let mut parts = vec![
                condition,
                format!("消费享 {} 折", discount(t.discount_pct)),
                format!("积分 {}", times(i64::from(t.multiplier_pct))),
            ];
            if t.booking_lead_hours > 0 {
                parts.push(format!("会员日提前 {} 小时预约", t.booking_lead_hours));
            }
            TierRule {
                description: format!("{}：{}", t.name, parts.join("，")),
                tier: view,
            }
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=60"))
        .json(Rules {
            points_per_yuan: s.points_per_yuan,
            earning: format!(
                "每实付 1 元积 {} 分（不足 1 元的部分不积分），再乘以会员等级的积分倍率",
                s.points_per_yuan
            ),
            bonuses,
            bonus_rule: "生日月与会员日加倍不叠加，取较高的一项".into(),
            checkin_points: s.checkin_points,
            checkin: format!("每天签到一次，得 {} 分（按自然日计）", s.checkin_points),
            referral_points: s.referral_points,
            referral_monthly_cap: s.referral_monthly_cap,
            referral: format!(
                "推荐的好友首次到店消费后，您立即获得 {} 分；每月最多 {} 位好友计入",
                s.referral_points, s.referral_monthly_cap
            ),
            points_validity_months: s.points_validity_months,
            expiry: format!(
                "每笔积分自获得之日起 {} 个月内有效，到期日当天仍可使用；到期前 {} 天会提醒您",
                s.points_validity_months, s.expiry_reminder_days
            ),
            spending: "使用积分时，先用最早到期的积分".into(),
            refunds: "消费退款时，相应积分一并退回；积分不足抵扣时记为待抵扣，之后获得的积分优先抵扣".into(),
            tier_validity_months: s.tier_validity_months,
            tiers: tier_rules,
            tier_rules: vec![
                "消费达到更高等级门槛时立即升级".into(),
                format!("升级后等级有效期 {} 个月", s.tier_validity_months),
                format!(
                    "有效期届满时，近 12 个月消费仍达到门槛则续期 {} 个月，否则调整为消费所达到的等级",
                    s.tier_validity_months
                ),
                format!("到期前 {} 天，如尚未达到保级条件，会提醒您还差多少", s.retention_reminder_days),
            ],
        }))
}

fn discount(pct: i32) -> String {
    if pct % 10 == 0 {
        format!("{}", pct / 10)
    } else {
        format!("{pct}")
    }
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(entries)
        .service(staff_entries)
        .service(check_in)
        .service(checkins)
        .service(adjust)
        .service(rules);
}
