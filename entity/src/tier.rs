use sea_orm::entity::prelude::*;

/// A membership tier (DESIGN section 3): data, not code, so admins can change the table.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tier")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub code: String,
    pub name: String,
    pub rank: i32,
    pub threshold_fen: i64,
    pub discount_pct: i32,
    pub multiplier_pct: i32,
    pub booking_lead_hours: i32,
    pub benefits: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
