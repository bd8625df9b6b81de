use sea_orm::entity::prelude::*;

/// A paid visit recorded by staff (or posted by the POS), unique per (store, order_no).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consumption")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub customer_id: i64,
    pub store_id: i64,
    pub order_no: String,
    pub items: String,
    pub paid_fen: i64,
    pub refunded_fen: i64,
    pub occurred_at: DateTimeUtc,
    pub business_date: Date,
    pub staff_id: Option<i64>,
    pub member_id: Option<i64>,
    pub points_earned: i64,
    pub bonus: Option<String>,
    pub lot_id: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
