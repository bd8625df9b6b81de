use sea_orm::entity::prelude::*;

/// Points earned together, with what is left of them and when they expire; or the one debt lot
/// (negative remaining) of a member whose reversal could not be recovered.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "points_lot")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub member_id: i64,
    pub kind: String,
    pub source: String,
    pub ref_id: Option<i64>,
    pub amount: i64,
    pub remaining: i64,
    pub earned_on: Date,
    pub expires_on: Option<Date>,
    pub expired_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
