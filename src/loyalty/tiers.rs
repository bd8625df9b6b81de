//! Tiers as data (DESIGN section 3): the table, which tier a spend meets, the member's
//! effective tier (a manual tier is a floor until its own end date), the trailing-12-month
//! qualifying spend, and the admin API that edits the table.

use actix_web::{get, put, web, HttpResponse};
use chrono::{NaiveDate, Utc};
use entity::{consumption, member, reward, tier};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::sub_months;
use super::card;
use crate::audit;
use crate::auth::staff::{Action, Staff};
use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::AppState;

/// The tier table, lowest rank first. Never empty: the migration seeds it and the API refuses
/// to empty it.
#[derive(Clone, Debug)]
pub struct TierTable(Vec<tier::Model>);

impl TierTable {
    pub async fn load(conn: &impl ConnectionTrait) -> Result<Self, DbErr> {
        let tiers = tier::Entity::find()
            .order_by_asc(tier::Column::Rank)
            .all(conn)
            .await?;
        if tiers.is_empty() {
            return Err(DbErr::Custom("the tier table is empty".into()));
        }
        Ok(Self(tiers))
    }

    pub fn all(&self) -> &[tier::Model] {
        &self.0
    }

    /// The entry tier (普通会员), given on joining.
    pub fn entry(&self) -> &tier::Model {
        &self.0[0]
    }

    pub fn by_id(&self, id: i64) -> Option<&tier::Model> {
        self.0.iter().find(|t| t.id == id)
    }

    pub fn by_code(&self, code: &str) -> Option<&tier::Model> {
        self.0.iter().find(|t| t.code == code)
    }

    /// The highest tier whose threshold `spend_fen` reaches (at exactly the threshold, too).
    pub fn met_by(&self, spend_fen: i64) -> &tier::Model {
        self.0
            .iter()
            .rev()
            .find(|t| spend_fen >= t.threshold_fen)
            .unwrap_or_else(|| self.entry())
    }

    /// The next tier above `rank`, if any.
    pub fn above(&self, rank: i32) -> Option<&tier::Model> {
        self.0.iter().find(|t| t.rank > rank)
    }

    /// The tier that applies to `m` on `today`: its earned tier, or its manual tier while that
    /// is higher and still running. Returns the tier, its end date and whether it is manual.
    pub fn effective(
        &self,
        m: &member::Model,
        today: NaiveDate,
    ) -> (&tier::Model, Option<NaiveDate>, bool) {
        let earned = self.by_id(m.tier_id).unwrap_or_else(|| self.entry());
        let manual = m
            .manual_tier_id
            .filter(|_| m.manual_tier_until.is_none_or(|until| until >= today))
            .and_then(|id| self.by_id(id));
        match manual {
            Some(t) if t.rank > earned.rank => (t, m.manual_tier_until, true),
            _ => (earned, m.tier_valid_until, false),
        }
    }
}

/// Net consumption (paid minus refunded) of the 12 months ending on `as_of`, in fen: the figure
/// tiers qualify on.
pub async fn trailing_spend(
    conn: &impl ConnectionTrait,
    customer_id: i64,
    as_of: NaiveDate,
    months: u32,
) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Sum {
        total: Option<i64>,
    }
    let from = sub_months(as_of, months);
    let row = consumption::Entity::find()
        .select_only()
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(paid_fen - refunded_fen), 0) AS BIGINT)"),
            "total",
        )
        .filter(consumption::Column::CustomerId.eq(customer_id))
        .filter(consumption::Column::BusinessDate.gt(from))
        .filter(consumption::Column::BusinessDate.lte(as_of))
        .into_model::<Sum>()
        .one(conn)
        .await?;
    Ok(row.and_then(|r| r.total).unwrap_or(0))
}

#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct TierView {
    pub code: String,
    pub name: String,
    pub rank: i32,
    /// Net consumption over the trailing 12 months that qualifies, in fen.
    pub threshold_fen: i64,
    /// 95 means 95折.
    pub discount_pct: i32,
    /// 120 means points x1.2.
    pub multiplier_pct: i32,
    /// Member-day booking opens this many hours earlier for this tier.
    pub booking_lead_hours: i32,
    pub benefits: Vec<String>,
}

impl From<&tier::Model> for TierView {
    fn from(t: &tier::Model) -> Self {
        Self {
            code: t.code.clone(),
            name: t.name.clone(),
            rank: t.rank,
            threshold_fen: t.threshold_fen,
            discount_pct: t.discount_pct,
            multiplier_pct: t.multiplier_pct,
            booking_lead_hours: t.booking_lead_hours,
            benefits: serde_json::from_str(&t.benefits).unwrap_or_default(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TierList {
    pub tiers: Vec<TierView>,
}

#[utoipa::path(tag = "staff", operation_id = "staff_list_tiers", responses((status = 200, body = TierList), (status = 401, body = ErrorEnvelope)), security(("staff_cookie" = []), ("staff_bearer" = [])))]
#[get("/api/v1/staff/tiers")]
pub async fn list_tiers(
    state: web::Data<AppState>,
    _staff: Staff,
) -> Result<HttpResponse, ApiError> {
    let table = TierTable::load(&state.db).await?;
    Ok(HttpResponse::Ok().json(TierList {
        tiers: table.all().iter().map(TierView::from).collect(),
    }))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierInput {
    /// Stable identifier (`gold`); an existing code updates that tier, a new one adds a tier.
    pub code: String,
    pub name: String,
    pub threshold_fen: i64,
    pub discount_pct: i32,
    pub multiplier_pct: i32,
    pub booking_lead_hours: i32,
    #[serde(default)]
    pub benefits: Vec<String>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierTableInput {
    /// Every tier, lowest first. Tiers left out are removed, unless members or rewards use them.
    pub tiers: Vec<TierInput>,
}

fn validate(input: &TierTableInput) -> Result<(), ApiError> {
    let tiers = &input.tiers;
    if tiers.is_empty() || tiers.len() > 10 {
        return Err(ApiError::validation("tiers", "等级须为 1 到 10 个"));
    }
    if tiers[0].threshold_fen != 0 {
        return Err(ApiError::validation(
            "tiers[0].threshold_fen",
            "最低等级的门槛须为 0（入会即得）",
        ));
    }
    for (i, t) in tiers.iter().enumerate() {
        let field = |f: &str| format!("tiers[{i}].{f}");
        let code_ok = !t.code.is_empty()
            && t.code.len() <= 20
            && t.code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !code_ok {
            return Err(ApiError::validation(
                &field("code"),
                "code 须为 1-20 位小写字母、数字或下划线",
            ));
        }
        let name = t.name.trim();
        if name.is_empty() || name.chars().count() > 20 {
            return Err(ApiError::validation(
                &field("name"),
                "等级名称须为 1-20 个字符",
            ));
        }
        if !(1..=100).contains(&t.discount_pct) {
            return Err(ApiError::validation(
                &field("discount_pct"),
                "折扣须在 1 到 100 之间（95 即 95折）",
            ));
        }
        if !(100..=1000).contains(&t.multiplier_pct) {
            return Err(ApiError::validation(
                &field("multiplier_pct"),
                "积分倍率须在 100 到 1000 之间（120 即 1.2 倍）",
            ));
        }
        if !(0..=720).contains(&t.booking_lead_hours) {
            return Err(ApiError::validation(
                &field("booking_lead_hours"),
                "提前预约小时数须在 0 到 720 之间",
            ));
        }
        if t.benefits.len() > 20
            || t.benefits
                .iter()
                .any(|b| b.trim().is_empty() || b.chars().count() > 50)
        {
            return Err(ApiError::validation(
                &field("benefits"),
                "权益最多 20 条，每条 1-50 个字符",
            ));
        }
        if i > 0 && t.threshold_fen <= tiers[i - 1].threshold_fen {
            return Err(ApiError::validation(
                &field("threshold_fen"),
                "等级门槛须逐级升高",
            ));
        }
        if tiers[..i]
            .iter()
            .any(|o| o.code == t.code || o.name.trim() == name)
        {
            return Err(ApiError::validation(
                &field("code"),
                "等级的 code 和名称不能重复",
            ));
        }
    }
    Ok(())
}

#[utoipa::path(
    tag = "staff",
    operation_id = "staff_replace_tiers",
    request_body = TierTableInput,
    responses(
        (status = 200, body = TierList),
        (status = 400, description = "`validation_failed` naming the field", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`tier_in_use`: a removed tier is still held or required", body = ErrorEnvelope),
    ),
    security(("staff_cookie" = []), ("staff_bearer" = []))
)]
#[put("/api/v1/staff/tiers")]
pub async fn replace_tiers(
    state: web::Data<AppState>,
    staff: Staff,
    body: web::Json<TierTableInput>,
) -> Result<HttpResponse, ApiError> {
    staff.require(Action::TierManage)?;
    let input = body.into_inner();
    validate(&input)?;
    let detail = serde_json::to_value(&input).map_err(ApiError::internal)?;
    let actor = staff.clone();
    db::write(&state.db, move |txn| {
        Box::pin(async move {
            let existing = tier::Entity::find().all(txn).await?;
            for old in existing
                .iter()
                .filter(|o| !input.tiers.iter().any(|t| t.code == o.code))
            {
                let held = member::Entity::find()
                    .filter(
                        member::Column::TierId
                            .eq(old.id)
                            .or(member::Column::ManualTierId.eq(old.id))
                            .or(member::Column::PrevTierId.eq(old.id)),
                    )
                    .count(txn)
                    .await?;
                let required = reward::Entity::find()
                    .filter(reward::Column::MinTierId.eq(old.id))
                    .count(txn)
                    .await?;
                if held + required > 0 {
                    return Err(ApiError::conflict(
                        "tier_in_use",
                        format!("等级「{}」仍有会员持有或被兑换礼品引用，不能删除", old.name),
                    )
                    .with_detail("tier_code", old.code.clone()));
                }
                tier::Entity::delete_by_id(old.id).exec(txn).await?;
            }
            // Ranks are unique; shift the old ones out of the way in one statement first.
            tier::Entity::update_many()
                .col_expr(
                    tier::Column::Rank,
                    Expr::col(tier::Column::Rank).add(10_000),
                )
                .exec(txn)
                .await?;
            let now = Utc::now();
            for (rank, t) in input.tiers.iter().enumerate() {
                let benefits = serde_json::to_string(&t.benefits).map_err(ApiError::internal)?;
                match existing.iter().find(|o| o.code == t.code) {
                    Some(old) => {
                        let mut am: tier::ActiveModel = old.clone().into();
                        am.name = Set(t.name.trim().to_string());
                        am.rank = Set(rank as i32);
                        am.threshold_fen = Set(t.threshold_fen);
                        am.discount_pct = Set(t.discount_pct);
                        am.multiplier_pct = Set(t.multiplier_pct);
                        am.booking_lead_hours = Set(t.booking_lead_hours);
                        am.benefits = Set(benefits);
                        am.updated_at = Set(now);
                        am.update(txn).await?;
                    }
                    None => {
                        tier::ActiveModel {
                            code: Set(t.code.clone()),
                            name: Set(t.name.trim().to_string()),
                            rank: Set(rank as i32),
                            threshold_fen: Set(t.threshold_fen),
                            discount_pct: Set(t.discount_pct),
                            multiplier_pct: Set(t.multiplier_pct),
                            booking_lead_hours: Set(t.booking_lead_hours),
                            benefits: Set(benefits),
                            updated_at: Set(now),
                            ..Default::default()
                        }
                        .insert(txn)
                        .await?;
                    }
                }
            }
            audit::entry("tiers.replace")
                .by(&actor)
                .detail(detail)
                .write(txn)
                .await?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    card::invalidate_all(&state.cache).await;
    let table = TierTable::load(&state.db).await?;
    Ok(HttpResponse::Ok().json(TierList {
        tiers: table.all().iter().map(TierView::from).collect(),
    }))
}
