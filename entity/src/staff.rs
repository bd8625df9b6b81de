use sea_orm::entity::prelude::*;

/// A member of staff who signs in to the console (DESIGN section 8). `store_id` is NULL for
/// admins, who act for the whole chain.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "staff")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub store_id: Option<i64>,
    pub password_hash: String,
    pub active: bool,
    pub password_changed_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The mini-program account this member of staff bound as their own (migration 10): where
    /// a campaign's test message goes.
    pub wechat_account_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[async_trait::async_trait]
impl ActiveModelBehavior for ActiveModel {
    /// Added by ALTER TABLE: on SQLite an insert's read-back can miss such a column, so inserts
    /// set it explicitly (see `customer`).
    async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        if insert && self.wechat_account_id.is_not_set() {
            self.wechat_account_id = sea_orm::ActiveValue::Set(None);
        }
        Ok(self)
    }
}
