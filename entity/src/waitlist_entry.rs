use sea_orm::entity::prelude::*;

/// A member waiting for a place in a full slot; the first waiting is promoted by the
/// cancellation that frees a place, in the same transaction.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "waitlist_entry")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_id: i64,
    pub slot_id: i64,
    pub member_id: i64,
    pub customer_id: i64,
    pub status: String,
    pub booking_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
