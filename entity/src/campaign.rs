use sea_orm::entity::prelude::*;

/// A campaign (DESIGN section 7): a marketing kind sent to an audience, optionally with a
/// voucher for those actually sent to. Its messages are outbox rows carrying its id.
/// Status: `draft`, `scheduled`, `running`, `paused`, `completed`, `cancelled`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaign")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Null: chain-wide (admins only).
    pub store_id: Option<i64>,
    pub kind: String,
    pub name: String,
    /// JSON: the audience filters.
    pub audience: String,
    /// JSON: the voucher spec, if any.
    pub voucher: Option<String>,
    pub scheduled_at: Option<DateTimeUtc>,
    pub status: String,
    pub created_by: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
