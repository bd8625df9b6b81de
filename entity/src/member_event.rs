use sea_orm::entity::prelude::*;

/// A member day (会员日) of one store: its slots open for booking at `opens_at`, earlier for
/// higher tiers by their lead hours.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub store_id: i64,
    pub event_date: Date,
    pub title: String,
    pub description: String,
    pub opens_at: DateTimeUtc,
    pub closes_at: DateTimeUtc,
    pub cancel_deadline: DateTimeUtc,
    pub min_tier_id: Option<i64>,
    pub points_bonus: bool,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub published_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
