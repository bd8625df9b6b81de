use sea_orm::entity::prelude::*;

/// Something members can redeem points for.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reward")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub description: String,
    pub points_price: i64,
    pub stock_total: i32,
    pub stock_left: i32,
    pub per_member_limit: Option<i32>,
    pub min_tier_id: Option<i64>,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    pub voucher_valid_days: i32,
    pub face_value_fen: Option<i64>,
    pub store_id: Option<i64>,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
