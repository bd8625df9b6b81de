use sea_orm::entity::prelude::*;

/// A voucher held by a customer: from a redemption or a campaign; verified once at the desk.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "voucher")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub code: String,
    pub customer_id: i64,
    pub member_id: Option<i64>,
    pub reward_id: Option<i64>,
    pub source: String,
    pub kind: String,
    pub title: String,
    pub face_value_fen: Option<i64>,
    pub points_cost: i64,
    pub spend_entry_id: Option<i64>,
    pub store_id: Option<i64>,
    pub status: String,
    pub issued_at: DateTimeUtc,
    pub expires_on: Date,
    pub used_at: Option<DateTimeUtc>,
    pub used_store_id: Option<i64>,
    pub used_by_staff_id: Option<i64>,
    pub cancelled_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
