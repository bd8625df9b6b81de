use sea_orm::entity::prelude::*;

/// A bookable time of a member day. `booked` counts live bookings and moves only by
/// conditional UPDATEs; a CHECK keeps it within 0..=capacity.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_slot")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_id: i64,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    pub service: String,
    pub capacity: i32,
    pub booked: i32,
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::member_event::Entity",
        from = "Column::EventId",
        to = "super::member_event::Column::Id"
    )]
    Event,
}

impl Related<super::member_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Event.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
