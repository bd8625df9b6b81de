use sea_orm::entity::prelude::*;

/// Everyone who has ever been a client of the chain (DESIGN section 3). The phone is stored
/// encrypted, found through its keyed hash, and shown masked.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customer")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: Option<String>,
    pub phone_enc: Option<String>,
    pub phone_hash: Option<String>,
    pub phone_masked: Option<String>,
    pub gender: Option<String>,
    pub birthday: Option<Date>,
    pub home_store_id: Option<i64>,
    pub source: String,
    /// The consultant (staff) who looks after this customer.
    pub consultant_id: Option<i64>,
    /// The customer who referred this one.
    pub referrer_id: Option<i64>,
    pub created_by_staff_id: Option<i64>,
    /// Paid visits, net of fully refunded ones.
    pub visit_count: i32,
    /// Paid minus refunded, in fen, over all time.
    pub lifetime_spend_fen: i64,
    pub first_visit_at: Option<DateTimeUtc>,
    pub last_visit_at: Option<DateTimeUtc>,
    /// Bookings not checked in by the end of their slot.
    pub no_show_count: i32,
    /// When the last marketing message (birthday, recall, campaign) was sent: the frequency
    /// cap's slot, taken by the sender with a conditional UPDATE.
    pub last_marketing_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[async_trait::async_trait]
impl ActiveModelBehavior for ActiveModel {
    /// On SQLite an insert that sets optional text or date columns to NULL came back without
    /// `no_show_count` (the last column, added by ALTER TABLE), failing the insert's read-back
    /// with "Missing value"; giving it its default explicitly avoids that on every path.
    async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        if insert && self.no_show_count.is_not_set() {
            self.no_show_count = sea_orm::ActiveValue::Set(0);
        }
        // Added by ALTER TABLE too (migration 8): the same read-back failure applies.
        if insert && self.last_marketing_at.is_not_set() {
            self.last_marketing_at = sea_orm::ActiveValue::Set(None);
        }
        Ok(self)
    }
}
