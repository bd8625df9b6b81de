use sea_orm::entity::prelude::*;

/// A message waiting to be sent; unique per (kind, reference), so queuing twice queues once.
/// Status: `pending`, `sending` (claimed by a sender), `sent`, `skipped`, `failed`, `deferred`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_message")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    pub customer_id: i64,
    pub reference: String,
    pub payload: String,
    pub status: String,
    pub due_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    /// Claims so far, including one whose worker crashed before recording an outcome.
    pub attempts: i32,
    pub claimed_at: Option<DateTimeUtc>,
    pub claimed_by: Option<String>,
    pub sent_at: Option<DateTimeUtc>,
    /// WeChat's id of the sent message; its delivery push names it.
    pub msgid: Option<String>,
    /// Why the message was skipped, failed or deferred (`no_quota`, `47003 thing1: ...`).
    pub reason: Option<String>,
    /// The WeChat template it was (or was to be) sent with.
    pub template_id: Option<String>,
    /// The campaign that queued it (migration 9); null for automations and transactional kinds.
    pub campaign_id: Option<i64>,
    /// The channel it went out on (migration 10): `subscribe`, or `oa_template` for a customer
    /// reached through the 服务号.
    pub channel: Option<String>,
    /// What WeChat later reported of a sent message: `delivered` or `failed`.
    pub delivery: Option<String>,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[async_trait::async_trait]
impl ActiveModelBehavior for ActiveModel {
    /// `attempts` was added by ALTER TABLE; on SQLite an insert's read-back can miss such a
    /// column ("Missing value"), so inserts set its default explicitly (see `customer`).
    async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        if insert && self.attempts.is_not_set() {
            self.attempts = sea_orm::ActiveValue::Set(0);
        }
        // Added by ALTER TABLE too (migration 9): the same read-back failure applies.
        if insert && self.campaign_id.is_not_set() {
            self.campaign_id = sea_orm::ActiveValue::Set(None);
        }
        // Migration 10's columns, likewise.
        if insert && self.channel.is_not_set() {
            self.channel = sea_orm::ActiveValue::Set(None);
        }
        if insert && self.delivery.is_not_set() {
            self.delivery = sea_orm::ActiveValue::Set(None);
        }
        if insert && self.delivered_at.is_not_set() {
            self.delivered_at = sea_orm::ActiveValue::Set(None);
        }
        Ok(self)
    }
}
