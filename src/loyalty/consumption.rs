//! Consumption and refunds (DESIGN section 4). Recording one is idempotent on (store,
//! order_no) and does everything in one transaction: the customer's visit and spend figures,
//! points (tier multiplier times the best bonus), the tier upgrade and the referrer's credit on
//! a referred customer's first paid consumption. A refund, full or partial, reverses the points
//! (own lot first, then soonest-expiring, debt for the rest), the qualifying spend, an upgrade
//! it no longer justifies and, when the qualifying consumption is refunded in full, the
//! referral credit.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use entity::{consumption, consumption_refund, customer, member, referral_credit, store};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::{add_months, month_key};
use super::card;
use super::ledger::{self, source, EntryKind, Posting};
use super::membership::{self, via};
use super::tiers::{trailing_spend, TierTable};
use crate::audit;
use crate::auth::staff::{Action, Staff};
use crate::config::LoyaltySettings;
use crate::customers::find_customer;
use crate::error::{ApiError, ErrorEnvelope};
use crate::idempotency::{self, IdempotencyKey, Outcome};
use crate::paging;
use crate::state::AppState;

/// The largest single payment accepted: 10 million yuan.
const MAX_PAID_FEN: i64 = 1_000_000_000;

#[derive(Deserialize, Serialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub name: String,
    #[serde(default = "one")]
    pub quantity: i32,
    pub amount_fen: i64,
}

fn one() -> i32 {
    1
}

#[derive(Deserialize, Serialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ConsumptionRequest {
    pub customer_id: i64,
    pub store_id: i64,
    /// The POS order number, unique per store: a retry with the same number changes nothing.
    pub order_no: String,
    #[serde(default)]
    pub items: Vec<Item>,
    /// What the customer actually paid, in fen.
    pub paid_fen: i64,
    /// When it happened; default now. May lie up to `loyalty.max_backdate_days` in the past.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A consumption after the checks at the edge.
#[derive(Clone, Debug)]
pub struct NewConsumption {
    pub customer_id: i64,
    pub store_id: i64,
    pub order_no: String,
    pub items: Vec<Item>,
    pub paid_fen: i64,
    pub occurred_at: DateTime<Utc>,
}

impl ConsumptionRequest {
    fn parse(
        self,
        settings: &LoyaltySettings,
        now: DateTime<Utc>,
    ) -> Result<NewConsumption, ApiError> {
        let order_no = self.order_no.trim().to_string();
        if order_no.is_empty()
            || order_no.len() > 64
            || !order_no
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ApiError::validation(
                "order_no",
                "订单号须为 1-64 位字母、数字、- 或 _",
            ));
        }
        if !(0..=MAX_PAID_FEN).contains(&self.paid_fen) {
            return Err(ApiError::validation(
                "paid_fen",
                "实付金额须在 0 到 1000 万元之间（单位：分）",
            ));
        }
        if self.items.len() > 50 {
            return Err(ApiError::validation("items", "项目最多 50 个"));
        }
        for (i, item) in self.items.iter().enumerate() {
            let name = item.name.trim();
            if name.is_empty() || name.chars().count() > 40 {
                return Err(ApiError::validation(
                    &format!("items[{i}].name"),
                    "项目名称须为 1-40 个字符",
                ));
            }
            if !(1..=1000).contains(&item.quantity)
                || !(0..=MAX_PAID_FEN).contains(&item.amount_fen)
            {
                return Err(ApiError::validation(
                    &format!("items[{i}]"),
                    "项目数量或金额不正确",
                ));
            }
        }
        let occurred_at = self.occurred_at.unwrap_or(now);
        if occurred_at > now + Duration::minutes(5) {
            return Err(ApiError::validation("occurred_at", "消费时间不能晚于现在"));
        }
        if occurred_at < now - Duration::days(i64::from(settings.max_backdate_days)) {
            return Err(ApiError::validation(
                "occurred_at",
                format!("消费时间不能早于 {} 天前", settings.max_backdate_days),
            ));
        }
        Ok(NewConsumption {
            customer_id: self.customer_id,
            store_id: self.store_id,
            order_no,
            items: self.items,
            paid_fen: self.paid_fen,
            occurred_at,
        })
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct ConsumptionView {
    pub id: i64,
    pub customer_id: i64,
    pub store_id: i64,
    pub order_no: String,
    pub items: Vec<Item>,
    pub paid_fen: i64,
    pub refunded_fen: i64,
    pub occurred_at: DateTime<Utc>,
    pub business_date: NaiveDate,
    pub member_id: Option<i64>,
    pub points_earned: i64,
    /// `birthday_month` or `member_day` when a bonus applied.
    pub bonus: Option<String>,
}

impl From<&consumption::Model> for ConsumptionView {
    fn from(c: &consumption::Model) -> Self {
        Self {
            id: c.id,
            customer_id: c.customer_id,
            store_id: c.store_id,
            order_no: c.order_no.clone(),
            items: serde_json::from_str(&c.items).unwrap_or_default(),
            paid_fen: c.paid_fen,
            refunded_fen: c.refunded_fen,
            occurred_at: c.occurred_at,
            business_date: c.business_date,
            member_id: c.member_id,
            points_earned: c.points_earned,
            bonus: c.bonus.clone(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug)]
pub struct Recorded {
    pub consumption: ConsumptionView,
    /// The member's balance after this consumption (null for a customer who is not a member).
    pub points_balance: Option<i64>,
    /// The tier code this consumption upgraded the member to.
    pub upgraded_to: Option<String>,
    /// True when the customer was enrolled by this consumption (`loyalty.auto_enrol`).
    pub enrolled: bool,
    /// The referrer's member id when this consumption earned them their referral points.
    pub referral_credited_to: Option<i64>,
    /// True when this order number had been recorded before: nothing changed.
    pub replayed: bool,
}

impl Recorded {
    /// Members whose cards this changed.
    pub fn touched_members(&self) -> Vec<i64> {
        self.consumption
            .member_id
            .into_iter()
            .chain(self.referral_credited_to)
            .collect()
    }
}

/// How the bonus multiplier is chosen: birthday month or member day (a configured day of the
/// month, or `event_day`: a published member-day event with the bonus on), the larger wins.
pub fn bonus_for(
    settings: &LoyaltySettings,
    birthday: Option<NaiveDate>,
    on: NaiveDate,
    event_day: bool,
) -> (i64, Option<&'static str>) {
    let birthday_month = birthday.is_some_and(|b| b.month() == on.month());
    let member_day = event_day || settings.member_days.contains(&on.day());
    let mut best = (100, None);
    if birthday_month && settings.birthday_multiplier_pct > best.0 {
        best = (settings.birthday_multiplier_pct, Some("birthday_month"));
    }
    if member_day && settings.member_day_multiplier_pct > best.0 {
        best = (settings.member_day_multiplier_pct, Some("member_day"));
    }
    best
}

/// Points for `paid_fen`: whole yuan times points per yuan, the tier multiplier and the bonus,
/// rounded down once at the end so no step loses a fraction.
pub fn points_for(paid_fen: i64, points_per_yuan: i64, tier_pct: i64, bonus_pct: i64) -> i64 {
    let yuan = i128::from(paid_fen / 100);
    let points =
        yuan * i128::from(points_per_yuan) * i128::from(tier_pct) * i128::from(bonus_pct) / 10_000;
    i64::try_from(points).unwrap_or(i64::MAX)
}

fn order_conflict(existing: &consumption::Model) -> ApiError {
    ApiError::conflict("order_no_conflict", "该门店的订单号已用于另一笔消费")
        .with_detail("consumption_id", existing.id)
}

/// Records a consumption in the caller's write transaction. `today` is the business date of
/// "now" (tier validity starts from it).
pub async fn record(
    txn: &DatabaseTransaction,
    settings: &LoyaltySettings,
    input: NewConsumption,
    staff_id: Option<i64>,
    today: NaiveDate,
) -> Result<Recorded, ApiError> {
    let cal = settings.calendar();
    let business_date = cal.date_of(input.occurred_at);
    let items = serde_json::to_string(&input.items).map_err(ApiError::internal)?;
    let now = Utc::now();
    let inserted = consumption::Entity::insert(consumption::ActiveModel {
        customer_id: Set(input.customer_id),
        store_id: Set(input.store_id),
        order_no: Set(input.order_no.clone()),
        items: Set(items),
        paid_fen: Set(input.paid_fen),
        refunded_fen: Set(0),
        occurred_at: Set(input.occurred_at),
        business_date: Set(business_date),
        staff_id: Set(staff_id),
        member_id: Set(None),
        points_earned: Set(0),
        bonus: Set(None),
        lot_id: Set(None),
        created_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([consumption::Column::StoreId, consumption::Column::OrderNo])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    let row = consumption::Entity::find()
        .filter(consumption::Column::StoreId.eq(input.store_id))
        .filter(consumption::Column::OrderNo.eq(&input.order_no))
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("consumption vanished")))?;
    if inserted == 0 {
        // A replay: the same order again answers as before; another order under the same
        // number is a conflict, and either way nothing changes.
        if row.customer_id != input.customer_id || row.paid_fen != input.paid_fen {
            return Err(order_conflict(&row));
        }
        let balance = match row.member_id {
            Some(id) => member::Entity::find_by_id(id)
                .one(txn)
                .await?
                .map(|m| m.points_balance),
            None => None,
        };
        return Ok(Recorded {
            consumption: ConsumptionView::from(&row),
            points_balance: balance,
            upgraded_to: None,
            enrolled: false,
            referral_credited_to: None,
            replayed: true,
        });
    }

    let paid = input.paid_fen > 0;
    if paid {
        let at = input.occurred_at;
        customer::Entity::update_many()
            .col_expr(
                customer::Column::VisitCount,
                Expr::col(customer::Column::VisitCount).add(1),
            )
            .col_expr(
                customer::Column::LifetimeSpendFen,
                Expr::col(customer::Column::LifetimeSpendFen).add(input.paid_fen),
            )
            .col_expr(
                customer::Column::FirstVisitAt,
                Expr::case(
                    Expr::col(customer::Column::FirstVisitAt)
                        .is_null()
                        .or(Expr::col(customer::Column::FirstVisitAt).gt(at)),
                    Expr::value(at),
                )
                .finally(Expr::col(customer::Column::FirstVisitAt))
                .into(),
            )
            .col_expr(
                customer::Column::LastVisitAt,
                Expr::case(
                    Expr::col(customer::Column::LastVisitAt)
                        .is_null()
                        .or(Expr::col(customer::Column::LastVisitAt).lt(at)),
                    Expr::value(at),
                )
                .finally(Expr::col(customer::Column::LastVisitAt))
                .into(),
            )
            .col_expr(customer::Column::UpdatedAt, Expr::value(now))
            .filter(customer::Column::Id.eq(input.customer_id))
            .exec(txn)
            .await?;
    }

    let customer = find_customer(txn, input.customer_id).await?;
    let mut member = membership::member_of_customer(txn, customer.id).await?;
    let mut enrolled = false;
    if member.is_none() && paid && settings.auto_enrol {
        let (m, created) = membership::enrol(txn, customer.id, via::AUTO).await?;
        enrolled = created;
        member = Some(m);
    }
    let Some(m) = member else {
        return Ok(Recorded {
            consumption: ConsumptionView::from(&row),
            points_balance: None,
            upgraded_to: None,
            enrolled: false,
            referral_credited_to: None,
            replayed: false,
        });
    };

    // Every decision below (multiplier, upgrade) is taken on the row as locked, so a nightly
    // job or another consumption committing meanwhile cannot make it act on a stale tier.
    let m = ledger::lock_member(txn, m.id).await?;
    let tiers = TierTable::load(txn).await?;
    let (tier, _, _) = tiers.effective(&m, business_date);
    // A member day at the store where the member is, or at their own store, counts: a member
    // who comes over for another store's member day is not told the bonus was not theirs.
    let mut event_day = crate::booking::is_member_day(txn, input.store_id, business_date).await?;
    if let Some(home) = customer.home_store_id.filter(|h| *h != input.store_id) {
        event_day = event_day || crate::booking::is_member_day(txn, home, business_date).await?;
    }
    let (bonus_pct, bonus) = bonus_for(settings, customer.birthday, business_date, event_day);
    let points = points_for(
        input.paid_fen,
        settings.points_per_yuan,
        i64::from(tier.multiplier_pct),
        bonus_pct,
    );
    let mut balance = m.points_balance;
    let mut lot_id = None;
    if points > 0 {
        let posted = ledger::credit(
            txn,
            &Posting {
                member_id: m.id,
                kind: EntryKind::Earn,
                source: source::CONSUMPTION,
                ref_id: Some(row.id),
                reason: format!("消费 ¥{}（订单 {}）", yuan(input.paid_fen), row.order_no),
                staff_id,
            },
            points,
            business_date,
            add_months(business_date, settings.points_validity_months),
        )
        .await?;
        balance = posted.balance_after;
        lot_id = posted.lot_id;
    }
    consumption::Entity::update_many()
        .col_expr(consumption::Column::MemberId, Expr::value(m.id))
        .col_expr(consumption::Column::PointsEarned, Expr::value(points))
        .col_expr(
            consumption::Column::Bonus,
            Expr::value(bonus.map(str::to_string)),
        )
        .col_expr(consumption::Column::LotId, Expr::value(lot_id))
        .filter(consumption::Column::Id.eq(row.id))
        .exec(txn)
        .await?;

    // The upgrade: the consumption that crosses a threshold lifts the earned tier now.
    let mut upgraded_to = None;
    if paid {
        let spend =
            trailing_spend(txn, customer.id, std::cmp::max(today, business_date), 12).await?;
        let met = tiers.met_by(spend);
        let current = tiers.by_id(m.tier_id).unwrap_or_else(|| tiers.entry());
        if met.rank > current.rank {
            let res = member::Entity::update_many()
                .col_expr(member::Column::PrevTierId, Expr::value(m.tier_id))
                .col_expr(
                    member::Column::PrevTierValidUntil,
                    Expr::value(m.tier_valid_until),
                )
                .col_expr(member::Column::TierId, Expr::value(met.id))
                .col_expr(
                    member::Column::TierValidUntil,
                    Expr::value(add_months(today, settings.tier_validity_months)),
                )
                .col_expr(member::Column::TierSource, Expr::value("upgrade"))
                .col_expr(member::Column::UpgradeConsumptionId, Expr::value(row.id))
                .col_expr(member::Column::UpdatedAt, Expr::value(now))
                .filter(member::Column::Id.eq(m.id))
                .filter(member::Column::TierId.eq(m.tier_id))
                .exec(txn)
                .await?;
            if res.rows_affected == 1 {
                upgraded_to = Some(met.code.clone());
            }
        }
    }

    let referral_credited_to = if paid {
        credit_referrer(txn, settings, &customer, row.id, business_date).await?
    } else {
        None
    };

    let row = consumption::Entity::find_by_id(row.id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("consumption vanished")))?;
    Ok(Recorded {
        consumption: ConsumptionView::from(&row),
        points_balance: Some(balance),
        upgraded_to,
        enrolled,
        referral_credited_to,
        replayed: false,
    })
}

fn yuan(fen: i64) -> String {
    if fen % 100 == 0 {
        format!("{}", fen / 100)
    } else {
        format!("{}.{:02}", fen / 100, fen % 100)
    }
}

/// Credits the referrer of `customer` for its first paid consumption, within the monthly cap.
/// Returns the referrer's member id when credited.
async fn credit_referrer(
    txn: &DatabaseTransaction,
    settings: &LoyaltySettings,
    customer: &customer::Model,
    consumption_id: i64,
    business_date: NaiveDate,
) -> Result<Option<i64>, ApiError> {
    let Some(referrer_customer) = customer.referrer_id else {
        return Ok(None);
    };
    if settings.referral_points <= 0 {
        return Ok(None);
    }
    let earlier_paid = consumption::Entity::find()
        .filter(consumption::Column::CustomerId.eq(customer.id))
        .filter(consumption::Column::PaidFen.gt(0))
        .filter(consumption::Column::Id.ne(consumption_id))
        .count(txn)
        .await?;
    if earlier_paid > 0 {
        return Ok(None);
    }
    let Some(referrer) = membership::member_of_customer(txn, referrer_customer).await? else {
        return Ok(None);
    };
    // Under the referrer's row lock, the cap count and the "not yet credited" check cannot
    // be raced by another referred customer's consumption.
    ledger::lock_member(txn, referrer.id).await?;
    let already = referral_credit::Entity::find()
        .filter(referral_credit::Column::ReferredCustomerId.eq(customer.id))
        .count(txn)
        .await?;
    if already > 0 {
        return Ok(None);
    }
    let month = month_key(business_date);
    let this_month = referral_credit::Entity::find()
        .filter(referral_credit::Column::ReferrerMemberId.eq(referrer.id))
        .filter(referral_credit::Column::Month.eq(&month))
        .filter(referral_credit::Column::ReversedAt.is_null())
        .count(txn)
        .await?;
    if this_month >= u64::from(settings.referral_monthly_cap) {
        tracing::info!(
            referrer = referrer.id,
            "referral credit skipped: monthly cap reached"
        );
        return Ok(None);
    }
    let posted = ledger::credit(
        txn,
        &Posting {
            member_id: referrer.id,
            kind: EntryKind::Earn,
            source: source::REFERRAL,
            ref_id: Some(consumption_id),
            reason: "推荐好友首次到店消费".into(),
            staff_id: None,
        },
        settings.referral_points,
        business_date,
        add_months(business_date, settings.points_validity_months),
    )
    .await?;
    referral_credit::ActiveModel {
        referrer_member_id: Set(referrer.id),
        referred_customer_id: Set(customer.id),
        consumption_id: Set(consumption_id),
        points: Set(settings.referral_points),
        month: Set(month),
        lot_id: Set(posted.lot_id.unwrap_or_default()),
        reversed_at: Set(None),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(Some(referrer.id))
}

async fn store_exists(txn: &DatabaseTransaction, id: i64) -> Result<bool, DbErr> {
    Ok(store::Entity::find_by_id(id).count(txn).await? > 0)
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_record_consumption",
    request_body = ConsumptionRequest,
    responses(
        (status = 201, body = Recorded),
        (status = 200, description = "A replay of an order already recorded: nothing changed", body = Recorded),
        (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`order_no_conflict`: the number belongs to another consumption", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/consumptions")]
pub async fn record_consumption(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<ConsumptionRequest>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::ConsumptionRecord)?;
    let settings = state.settings.loyalty.clone();
    let input = body.into_inner().parse(&settings, Utc::now())?;
    if !staff.covers_store(Some(input.store_id)) {
        return Err(ApiError::forbidden("other_store"));
    }
    let c = find_customer(&state.db, input.customer_id).await?;
    staff.require_customer(Action::ConsumptionRecord, &c)?;
    let today = settings.today();
    let staff_id = staff.id;
    let actor = staff.clone();
    let recorded = crate::db::write(&state.db, move |txn| {
        Box::pin(async move {
            if !store_exists(txn, input.store_id).await? {
                return Err(ApiError::validation("store_id", "门店不存在"));
            }
            let recorded = record(txn, &settings, input, Some(staff_id), today).await?;
            if !recorded.replayed {
                audit::entry("consumption.record")
                    .by(&actor)
                    .target("consumption", recorded.consumption.id)
                    .store(Some(recorded.consumption.store_id))
                    .detail(serde_json::json!({
                        "paid_fen": recorded.consumption.paid_fen,
                        "points": recorded.consumption.points_earned,
                    }))
                    .write(txn)
                    .await?;
            }
            Ok::<_, ApiError>(recorded)
        })
    })
    .await?;
    card::invalidate_many(&state.cache, recorded.touched_members()).await;
    let status = if recorded.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(HttpResponse::build(status).json(recorded))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// How much of the payment is refunded now, in fen; refunds of one consumption add up to at
    /// most what was paid.
    pub amount_fen: i64,
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    pub refund_id: i64,
    pub consumption: ConsumptionView,
    /// Points taken back from the member by this refund.
    pub points_reversed: i64,
    /// The member's balance after it (negative: a debt later earnings repay first).
    pub points_balance: Option<i64>,
    /// Points taken back from the referrer, when this refund undid a referral.
    pub referral_reversed: Option<i64>,
    /// The tier the member holds after the refund, when it undid an upgrade.
    pub tier_after: Option<String>,
}

/// Refunds `amount_fen` of a consumption in the caller's write transaction.
pub async fn refund(
    txn: &DatabaseTransaction,
    consumption_id: i64,
    amount_fen: i64,
    reason: Option<String>,
    staff_id: Option<i64>,
    today: NaiveDate,
) -> Result<(RefundView, Vec<i64>), ApiError> {
    let updated = consumption::Entity::update_many()
        .col_expr(
            consumption::Column::RefundedFen,
            Expr::col(consumption::Column::RefundedFen).add(amount_fen),
        )
        .filter(consumption::Column::Id.eq(consumption_id))
        .filter(
            Expr::col(consumption::Column::RefundedFen)
                .add(amount_fen)
                .lte(Expr::col(consumption::Column::PaidFen)),
        )
        .exec_with_returning(txn)
        .await?;
    let Some(c) = updated.into_iter().next() else {
        let c = consumption::Entity::find_by_id(consumption_id)
            .one(txn)
            .await?
            .ok_or_else(|| ApiError::not_found("消费记录"))?;
        return Err(
            ApiError::conflict("refund_exceeds_paid", "退款金额超过可退金额")
                .with_detail("refundable_fen", c.paid_fen - c.refunded_fen),
        );
    };
    let fully = c.refunded_fen == c.paid_fen;
    let row = consumption_refund::ActiveModel {
        consumption_id: Set(c.id),
        amount_fen: Set(amount_fen),
        points_reversed: Set(0),
        staff_id: Set(staff_id),
        reason: Set(reason),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    customer::Entity::update_many()
        .col_expr(
            customer::Column::LifetimeSpendFen,
            Expr::col(customer::Column::LifetimeSpendFen).sub(amount_fen),
        )
        .col_expr(
            customer::Column::VisitCount,
            if fully {
                Expr::cust("CASE WHEN visit_count > 0 THEN visit_count - 1 ELSE 0 END")
            } else {
                Expr::col(customer::Column::VisitCount)
            },
        )
        .filter(customer::Column::Id.eq(c.customer_id))
        .exec(txn)
        .await?;

    let mut touched = Vec::new();
    let mut view = RefundView {
        refund_id: row.id,
        consumption: ConsumptionView::from(&c),
        points_reversed: 0,
        points_balance: None,
        referral_reversed: None,
        tier_after: None,
    };
    let Some(member_id) = c.member_id else {
        return Ok((view, touched));
    };
    touched.push(member_id);

    // Points: the refunded share of what it earned, computed on the running total so partial
    // refunds never round away a point.
    #[derive(FromQueryResult)]
    struct Sum {
        total: Option<i64>,
    }
    let reversed_before = consumption_refund::Entity::find()
        .select_only()
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(points_reversed), 0) AS BIGINT)"),
            "total",
        )
        .filter(consumption_refund::Column::ConsumptionId.eq(c.id))
        .into_model::<Sum>()
        .one(txn)
        .await?
        .and_then(|s| s.total)
        .unwrap_or(0);
    let target = if c.paid_fen == 0 {
        0
    } else {
        i64::try_from(
            i128::from(c.points_earned) * i128::from(c.refunded_fen) / i128::from(c.paid_fen),
        )
        .unwrap_or(c.points_earned)
    };
    let to_reverse = target - reversed_before;
    let mut balance = None;
    if to_reverse > 0 {
        let posted = ledger::debit(
            txn,
            &Posting {
                member_id,
                kind: EntryKind::Reverse,
                source: source::REFUND,
                ref_id: Some(row.id),
                reason: format!("退款 ¥{}（订单 {}）", yuan(amount_fen), c.order_no),
                staff_id,
            },
            to_reverse,
            c.lot_id,
            true,
            today,
        )
        .await?;
        consumption_refund::Entity::update_many()
            .col_expr(
                consumption_refund::Column::PointsReversed,
                Expr::value(to_reverse),
            )
            .filter(consumption_refund::Column::Id.eq(row.id))
            .exec(txn)
            .await?;
        balance = Some(posted.balance_after);
        view.points_reversed = to_reverse;
    }

    // Referral: a referral whose qualifying consumption is refunded in full is not justified.
    if fully {
        if let Some(credit) = referral_credit::Entity::find()
            .filter(referral_credit::Column::ConsumptionId.eq(c.id))
            .filter(referral_credit::Column::ReversedAt.is_null())
            .one(txn)
            .await?
        {
            let res = referral_credit::Entity::update_many()
                .col_expr(referral_credit::Column::ReversedAt, Expr::value(Utc::now()))
                .filter(referral_credit::Column::Id.eq(credit.id))
                .filter(referral_credit::Column::ReversedAt.is_null())
                .exec(txn)
                .await?;
            if res.rows_affected == 1 {
                ledger::debit(
                    txn,
                    &Posting {
                        member_id: credit.referrer_member_id,
                        kind: EntryKind::Reverse,
                        source: source::REFERRAL_REVERSAL,
                        ref_id: Some(c.id),
                        reason: "推荐好友的首次消费已全额退款".into(),
                        staff_id,
                    },
                    credit.points,
                    Some(credit.lot_id),
                    true,
                    today,
                )
                .await?;
                view.referral_reversed = Some(credit.points);
                touched.push(credit.referrer_member_id);
            }
        }
    }

    // Tier: an upgrade the remaining spend no longer justifies falls back to what it does
    // justify, but never below the tier held before the upgrade while that was still running.
    let m = ledger::lock_member(txn, member_id).await?;
    // A tier the refunds already lowered is checked again: each refund may lower it further,
    // never below the tier held before the upgrade while that still runs (kept as the floor).
    if m.tier_source == "upgrade" || m.tier_source == "refund" {
        let tiers = TierTable::load(txn).await?;
        let current = tiers.by_id(m.tier_id).unwrap_or_else(|| tiers.entry());
        let spend = trailing_spend(txn, m.customer_id, today, 12).await?;
        if spend < current.threshold_fen {
            let met = tiers.met_by(spend);
            let prev = m
                .prev_tier_id
                .and_then(|id| tiers.by_id(id))
                .filter(|_| m.prev_tier_valid_until.is_none_or(|u| u >= today));
            let (target, valid_until) = match prev {
                Some(p) if p.rank >= met.rank => (p, m.prev_tier_valid_until),
                _ if met.rank == 0 => (met, None),
                _ => (met, m.tier_valid_until),
            };
            member::Entity::update_many()
                .col_expr(member::Column::TierId, Expr::value(target.id))
                .col_expr(member::Column::TierValidUntil, Expr::value(valid_until))
                .col_expr(member::Column::TierSource, Expr::value("refund"))
                .col_expr(member::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(member::Column::Id.eq(m.id))
                .filter(member::Column::TierId.eq(m.tier_id))
                .exec(txn)
                .await?;
            view.tier_after = Some(target.code.clone());
        }
    }
    view.points_balance = match balance {
        Some(b) => Some(b),
        None => Some(m.points_balance),
    };
    let c = consumption::Entity::find_by_id(c.id).one(txn).await?;
    if let Some(c) = c {
        view.consumption = ConsumptionView::from(&c);
    }
    Ok((view, touched))
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_refund_consumption",
    params(
        ("id" = i64, Path, description = "consumption id"),
        ("Idempotency-Key" = String, Header, description = "Required; a retry with the same key and body replays the first answer"),
    ),
    request_body = RefundRequest,
    responses(
        (status = 201, body = RefundView),
        (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`refund_exceeds_paid`, with `refundable_fen`", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[post("/api/v1/staff/consumptions/{id}/refund")]
pub async fn refund_consumption(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Json<RefundRequest>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::ConsumptionRefund)?;
    let key = IdempotencyKey::required(&req)?;
    let id = path.into_inner();
    let body = body.into_inner();
    if !(1..=MAX_PAID_FEN).contains(&body.amount_fen) {
        return Err(ApiError::validation(
            "amount_fen",
            "退款金额须大于 0（单位：分）",
        ));
    }
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    if reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return Err(ApiError::validation("reason", "原因不超过 200 个字符"));
    }
    let c = consumption::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("消费记录"))?;
    if !staff.covers_store(Some(c.store_id)) {
        return Err(ApiError::not_found("消费记录"));
    }
    let today = state.settings.loyalty.today();
    let actor = staff.clone();
    let amount = body.amount_fen;
    let (response, touched) = idempotency::once(
        &state.db,
        format!("consumption:{id}:refund"),
        key,
        &body,
        Box::new(move |txn| {
            Box::pin(async move {
                let (view, members) = refund(txn, id, amount, reason, Some(actor.id), today).await?;
                audit::entry("consumption.refund")
                    .by(&actor)
                    .target("consumption", id)
                    .store(Some(view.consumption.store_id))
                    .detail(serde_json::json!({"amount_fen": amount, "points_reversed": view.points_reversed}))
                    .write(txn)
                    .await?;
                Ok((Outcome::new(StatusCode::CREATED, &view)?, members))
            })
        }),
    )
    .await?;
    card::invalidate_many(&state.cache, touched.unwrap_or_default()).await;
    Ok(response)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsumptionQuery {
    pub customer_id: i64,
    pub cursor: Option<i64>,
    pub limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsumptionPage {
    pub items: Vec<ConsumptionView>,
    pub next_cursor: Option<i64>,
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_list_consumptions",
    params(ConsumptionQuery),
    responses((status = 200, body = ConsumptionPage), (status = 404, body = ErrorEnvelope)),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[get("/api/v1/staff/consumptions")]
pub async fn list_consumptions(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<ConsumptionQuery>,
) -> Result<HttpResponse, ApiError> {
    let c = find_customer(&state.db, query.customer_id).await?;
    staff.require_customer(Action::CustomerRead, &c)?;
    let limit = paging::limit(query.limit, 20, 100)?;
    let (rows, next_cursor) = paging::fetch(
        &state.db,
        consumption::Entity::find().filter(consumption::Column::CustomerId.eq(c.id)),
        consumption::Column::Id,
        query.cursor,
        limit,
        |r| r.id,
    )
    .await?;
    Ok(HttpResponse::Ok().json(ConsumptionPage {
        items: rows.iter().map(ConsumptionView::from).collect(),
        next_cursor,
    }))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(record_consumption)
        .service(refund_consumption)
        .service(list_consumptions);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_down_once_at_the_end() {
        // 333.99 yuan at gold (x1.2) on a member day (x2): 333 * 1.2 * 2 = 799.2 -> 799.
        assert_eq!(points_for(33_399, 1, 120, 200), 799);
        assert_eq!(points_for(99, 1, 200, 200), 0);
        assert_eq!(points_for(3_000_000, 1, 100, 100), 30_000);
    }

    #[test]
    fn the_larger_bonus_wins_and_bonuses_do_not_stack() {
        let mut s = LoyaltySettings::default();
        let day = NaiveDate::from_ymd_opt(2026, 3, 7).unwrap_or_default();
        let march_birthday = NaiveDate::from_ymd_opt(1990, 3, 20);
        assert_eq!(bonus_for(&s, march_birthday, day, false).0, 200);
        s.member_day_multiplier_pct = 300;
        assert_eq!(
            bonus_for(&s, march_birthday, day, false),
            (300, Some("member_day"))
        );
        s.birthday_multiplier_pct = 400;
        assert_eq!(
            bonus_for(&s, march_birthday, day, false),
            (400, Some("birthday_month"))
        );
        let plain = NaiveDate::from_ymd_opt(2026, 4, 8).unwrap_or_default();
        assert_eq!(bonus_for(&s, march_birthday, plain, false), (100, None));
        assert_eq!(bonus_for(&s, None, plain, true), (300, Some("member_day")));
    }
}
