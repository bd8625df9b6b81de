use sea_orm::entity::prelude::*;

/// A member's place in a slot. A partial unique index allows one live (not cancelled)
/// booking per member per event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "booking")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub code: String,
    pub event_id: i64,
    pub slot_id: i64,
    pub member_id: i64,
    pub customer_id: i64,
    pub status: String,
    pub via: String,
    pub created_at: DateTimeUtc,
    pub cancelled_at: Option<DateTimeUtc>,
    pub cancelled_by: Option<String>,
    pub checked_in_at: Option<DateTimeUtc>,
    pub checked_in_by: Option<i64>,
    pub no_show_at: Option<DateTimeUtc>,
    pub reminder_queued_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
