use sea_orm::entity::prelude::*;

/// A customer who joined the programme: number, tier and its validity, points balance.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub customer_id: i64,
    pub member_no: String,
    pub tier_id: i64,
    pub tier_valid_until: Option<Date>,
    pub tier_source: String,
    pub prev_tier_id: Option<i64>,
    pub prev_tier_valid_until: Option<Date>,
    pub upgrade_consumption_id: Option<i64>,
    pub manual_tier_id: Option<i64>,
    pub manual_tier_until: Option<Date>,
    pub points_balance: i64,
    pub joined_via: String,
    pub joined_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
