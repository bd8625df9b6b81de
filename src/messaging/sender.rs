//! The outbox sender (DESIGN section 7): claims due `outbox_message` rows, sends each as a
//! subscribe message and records the outcome.
//!
//! - **Claiming** moves rows to `sending` with the worker's id and the time; PostgreSQL does it
//!   in one statement with `FOR UPDATE SKIP LOCKED`, so concurrent workers never claim the same
//!   row; SQLite does it in one write transaction (one writer at a time). A row left in
//!   `sending` longer than the lease belongs to a crashed worker and is claimed again.
//! - **Recording** is one conditional UPDATE on (id, `sending`, claimed_by): a worker whose row
//!   was taken over after its lease records nothing.
//! - **Outcomes**: `sent` (msgid); `skipped` (no quota, no account, no template, no consent,
//!   frequency cap: nothing to retry); `failed` (WeChat refused the content, or the retries
//!   ran out); `deferred` (WeChat busy or unreachable: retried with backoff; 45009, the daily
//!   limit: retried from the next business day, and the whole channel pauses until then).
//! - **Rate**: at most `messaging.rate_per_second` WeChat calls per second across all
//!   instances, counted in the shared cache.
//!
//! - **Guard rails** (marketing kinds only: birthday, recall, campaigns; transactional kinds
//!   are exempt): the customer's mini-program account must consent to marketing (else
//!   `no_consent`), and one conditional UPDATE on `customer.last_marketing_at` takes the
//!   customer's slot under the frequency cap (else `frequency_cap`) before WeChat is called.
//!   A message that then is not sent gives the slot back. The cap lives here, not in the jobs,
//!   so that every producer of marketing messages shares one cap.
//! - **Vouchers** attached to a marketing message (`payload.voucher`) are issued in the same
//!   transaction that records `sent`, so only customers actually reached get one, once.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use entity::{customer, member, message_template, outbox_message, store, wechat_account};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db;
use crate::loyalty::rewards::{self, voucher_source, NewVoucher};
use crate::messaging::automations::VoucherSpec;
use crate::messaging::templates::{self, channel};
use crate::outbox;
use crate::state::AppState;
use crate::wechat::client::{WechatClient, WechatError};
use crate::wechat::official_account::{self, OaSendError};
use crate::wechat::subscriptions::{self, Outgoing, SendError};

/// Set while WeChat's daily limit (45009) is reached on a channel (the key names it); holds
/// the instant sending resumes.
pub const PAUSE_KEY: &str = "messaging:pause:subscribe";
const OA_PAUSE_KEY: &str = "messaging:pause:oa_template";

fn pause_key(channel: &str) -> &'static str {
    if channel == channel::OA_TEMPLATE {
        OA_PAUSE_KEY
    } else {
        PAUSE_KEY
    }
}
/// Kept well under the `reason` column's 200 characters.
const MAX_REASON_CHARS: usize = 200;
/// Waits before retrying a message WeChat could not take, by attempt; the last one repeats.
const BACKOFF_SECS: [i64; 4] = [30, 120, 600, 3600];
/// Shown for a customer without a name, so a template that greets by name still renders.
const NAMELESS: &str = "会员";

/// What the sender needs: no HTTP state, so tests (and later the CLI) can drive it.
pub struct SendContext<'a> {
    pub db: &'a DatabaseConnection,
    pub cache: &'a Cache,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
    pub wechat: &'a WechatClient,
    /// The 服务号, the second channel, when there is one.
    pub oa: Option<&'a WechatClient>,
    /// Sandbox mode: the default templates carry the sandbox's template ids.
    pub sandbox: bool,
    /// Written to `claimed_by`; unique per running sender.
    pub worker: &'a str,
    /// Templates read in this round, by (kind, channel): a round of one campaign reads each
    /// once, and a template staff change is used from the next round on.
    templates: std::sync::Mutex<HashMap<(String, &'static str), Option<ChannelTemplate>>>,
}

impl<'a> SendContext<'a> {
    pub fn new(state: &'a AppState, worker: &'a str) -> Self {
        Self {
            db: &state.db,
            cache: &state.cache,
            settings: &state.settings,
            clock: &state.clock,
            wechat: &state.wechat,
            oa: state.oa.as_ref(),
            sandbox: state.sandbox.is_some(),
            worker,
            templates: Default::default(),
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SendReport {
    pub claimed: u32,
    pub sent: u32,
    pub skipped: u32,
    pub failed: u32,
    pub deferred: u32,
}

/// How a claimed message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        msgid: String,
        /// `subscribe`, or `oa_template` for the 服务号.
        channel: &'static str,
    },
    Skipped {
        reason: String,
    },
    Failed {
        reason: String,
    },
    /// Tried again at `until`. `counts` is false when the message itself was not at fault
    /// (the channel was paused), so the wait does not use up its attempts.
    Deferred {
        until: DateTime<Utc>,
        reason: String,
        counts: bool,
    },
}

impl Outcome {
    fn status(&self) -> &'static str {
        match self {
            Outcome::Sent { .. } => "sent",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed { .. } => "failed",
            Outcome::Deferred { .. } => "deferred",
        }
    }

    fn reason(&self) -> Option<String> {
        match self {
            Outcome::Sent { .. } => None,
            Outcome::Skipped { reason }
            | Outcome::Failed { reason }
            | Outcome::Deferred { reason, .. } => {
                Some(reason.chars().take(MAX_REASON_CHARS).collect())
            }
        }
    }
}

/// A name for this sender in `claimed_by`: the process and a random part, so two instances
/// (or a restarted one) never share it.
pub fn worker_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("sender-{}-{}", std::process::id(), &random[..12])
}

/// Claims up to `batch` rows for `worker`: due pending or deferred rows, oldest due first, and
/// rows a crashed worker left in `sending` longer than the lease. Returns them as claimed.
pub async fn claim(
    db: &DatabaseConnection,
    worker: &str,
    now: DateTime<Utc>,
    batch: u32,
    lease: Duration,
) -> Result<Vec<outbox_message::Model>, DbErr> {
    let stale_before = now - lease;
    let mut rows = match db.get_database_backend() {
        DbBackend::Postgres => {
            // One statement: SKIP LOCKED passes over rows another worker is claiming right
            // now, and the re-check after a lock wait drops rows that stopped matching.
            let sql = "UPDATE outbox_message \
                 SET status = 'sending', claimed_at = $1, claimed_by = $2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM outbox_message \
                   WHERE (status IN ('pending', 'deferred') AND due_at <= $1) \
                      OR (status = 'sending' AND claimed_at < $3) \
                   ORDER BY due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 RETURNING *";
            outbox_message::Entity::find()
                .from_raw_sql(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [
                        now.into(),
                        worker.to_string().into(),
                        stale_before.into(),
                        i64::from(batch).into(),
                    ],
                ))
                .all(db)
                .await?
        }
        _ => {
            // SQLite has one writer: BEGIN IMMEDIATE makes the select and the update one step
            // that no other worker can interleave with.
            let txn = db::begin_write(db).await?;
            let ids: Vec<i64> = outbox_message::Entity::find()
                .select_only()
                .column(outbox_message::Column::Id)
                .filter(
                    Condition::any()
                        .add(
                            Condition::all()
                                .add(outbox_message::Column::Status.is_in(["pending", "deferred"]))
                                .add(outbox_message::Column::DueAt.lte(now)),
                        )
                        .add(
                            Condition::all()
                                .add(outbox_message::Column::Status.eq("sending"))
                                .add(outbox_message::Column::ClaimedAt.lt(stale_before)),
                        ),
                )
                .order_by_asc(outbox_message::Column::DueAt)
                .order_by_asc(outbox_message::Column::Id)
                .limit(u64::from(batch))
                .into_tuple()
                .all(&txn)
                .await?;
            if ids.is_empty() {
                txn.commit().await?;
                return Ok(Vec::new());
            }
            outbox_message::Entity::update_many()
                .col_expr(outbox_message::Column::Status, Expr::value("sending"))
                .col_expr(outbox_message::Column::ClaimedAt, Expr::value(now))
                .col_expr(
                    outbox_message::Column::ClaimedBy,
                    Expr::value(worker.to_string()),
                )
                .col_expr(
                    outbox_message::Column::Attempts,
                    Expr::col(outbox_message::Column::Attempts).add(1),
                )
                .filter(outbox_message::Column::Id.is_in(ids.clone()))
                .exec(&txn)
                .await?;
            let rows = outbox_message::Entity::find()
                .filter(outbox_message::Column::Id.is_in(ids))
                .all(&txn)
                .await?;
            txn.commit().await?;
            rows
        }
    };
    rows.sort_by_key(|r| (r.due_at, r.id));
    Ok(rows)
}

/// How long a claim protects a row (`messaging.lease_secs`).
pub fn lease(settings: &Settings) -> Duration {
    Duration::seconds(i64::try_from(settings.messaging.lease_secs).unwrap_or(i64::MAX / 1000))
}

/// Records how a claimed row ended, if `claimed_by` still holds it; false when the row was
/// taken over (its lease ran out) or already recorded, in which case nothing changes.
pub async fn record(
    db: &impl ConnectionTrait,
    id: i64,
    claimed_by: &str,
    outcome: &Outcome,
    template_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use outbox_message::Column as C;
    let mut update = outbox_message::Entity::update_many()
        .col_expr(C::Status, Expr::value(outcome.status()))
        .col_expr(C::Reason, Expr::value(outcome.reason()));
    if let Some(template_id) = template_id {
        update = update.col_expr(C::TemplateId, Expr::value(template_id.to_string()));
    }
    match outcome {
        Outcome::Sent { msgid, channel } => {
            update = update
                .col_expr(C::Msgid, Expr::value(msgid.clone()))
                .col_expr(C::Channel, Expr::value(*channel))
                .col_expr(C::SentAt, Expr::value(now));
        }
        Outcome::Deferred { until, counts, .. } => {
            update = update.col_expr(C::DueAt, Expr::value(*until));
            if !counts {
                update = update.col_expr(C::Attempts, Expr::col(C::Attempts).sub(1));
            }
        }
        Outcome::Skipped { .. } | Outcome::Failed { .. } => {}
    }
    let done = update
        .filter(C::Id.eq(id))
        .filter(C::Status.eq("sending"))
        .filter(C::ClaimedBy.eq(claimed_by))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Claims one batch and delivers it.
pub async fn run_once(ctx: &SendContext<'_>) -> Result<SendReport, DbErr> {
    let rows = claim(
        ctx.db,
        ctx.worker,
        ctx.clock.now(),
        ctx.settings.messaging.batch,
        lease(ctx.settings),
    )
    .await?;
    let mut report = SendReport {
        claimed: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        ..Default::default()
    };
    for row in &rows {
        match deliver(ctx, row).await {
            Ok(Some(outcome)) => match outcome {
                Outcome::Sent { .. } => report.sent += 1,
                Outcome::Skipped { .. } => report.skipped += 1,
                Outcome::Failed { .. } => report.failed += 1,
                Outcome::Deferred { .. } => report.deferred += 1,
            },
            // Taken over by another worker: that worker reports it.
            Ok(None) => {}
            Err(e) => {
                // The row stays in `sending`; once the lease runs out a sender claims it again.
                tracing::error!(message_id = row.id, error = %e, "outbox outcome not recorded");
            }
        }
    }
    Ok(report)
}

/// Sends one claimed row and records the outcome. `Ok(None)`: the outcome was not recorded
/// because this worker no longer holds the row.
pub async fn deliver(
    ctx: &SendContext<'_>,
    row: &outbox_message::Model,
) -> Result<Option<Outcome>, DbErr> {
    let (outcome, template_id) = match attempt(ctx, row).await {
        Ok(done) => done,
        // A failed lookup sent nothing, so trying again later is safe.
        Err(e) => (transient(ctx, row, format!("database: {e}")), None),
    };
    let claimed_by = row.claimed_by.as_deref().unwrap_or(ctx.worker);
    let now = ctx.clock.now();
    let recorded = match (&outcome, attached_voucher(row)) {
        (Outcome::Sent { .. }, Some(spec)) => {
            record_with_voucher(
                ctx,
                row,
                claimed_by,
                &outcome,
                template_id.as_deref(),
                &spec,
            )
            .await?
        }
        _ => {
            record(
                ctx.db,
                row.id,
                claimed_by,
                &outcome,
                template_id.as_deref(),
                now,
            )
            .await?
        }
    };
    if !recorded {
        tracing::warn!(
            message_id = row.id,
            "outbox message taken over by another sender; outcome dropped"
        );
        return Ok(None);
    }
    match &outcome {
        Outcome::Sent { .. } => {
            tracing::info!(message_id = row.id, kind = %row.kind, customer_id = row.customer_id, "message sent");
        }
        other => {
            tracing::info!(
                message_id = row.id,
                kind = %row.kind,
                customer_id = row.customer_id,
                status = other.status(),
                reason = other.reason().unwrap_or_default(),
                "message not sent"
            );
        }
    }
    Ok(Some(outcome))
}

/// Everything up to and including the WeChat call; returns the outcome and the template used.
async fn attempt(
    ctx: &SendContext<'_>,
    row: &outbox_message::Model,
) -> Result<(Outcome, Option<String>), DbErr> {
    let skipped = |reason: &str| Outcome::Skipped {
        reason: reason.to_string(),
    };
    let failed = |reason: String| Outcome::Failed { reason };
    let Some(spec) = templates::spec(&row.kind) else {
        return Ok((failed(format!("unknown message kind {}", row.kind)), None));
    };
    let Some(account) = wechat_account::Entity::find()
        .filter(wechat_account::Column::CustomerId.eq(row.customer_id))
        .filter(wechat_account::Column::Appid.eq(ctx.wechat.appid()))
        .order_by_desc(wechat_account::Column::LastLoginAt)
        .one(ctx.db)
        .await?
    else {
        return Ok((skipped("no_account"), None));
    };
    let marketing = outbox::kind::is_marketing(&row.kind);
    if marketing && !account.consent_marketing {
        return Ok((skipped("no_consent"), None));
    }

    let tz = ctx.settings.loyalty.tz();
    let subscribe = subscribe_template(ctx, &row.kind, spec, tz).await?;
    let subscribe_id = subscribe.as_ref().map(|t| t.template_id.clone());
    let has_quota = match &subscribe {
        Some(t) => subscriptions::remaining(ctx.db, account.id, &t.template_id).await? > 0,
        None => false,
    };
    // The 服务号 is the second channel: for a customer the subscribe message cannot reach
    // (no quota, or no subscribe template for the kind) who follows it.
    let route = if has_quota {
        subscribe.map(|t| (Route::Subscribe, t))
    } else {
        match second_channel(ctx, &row.kind, &account).await? {
            SecondChannel::Ready(route, t) => Some((route, t)),
            SecondChannel::NotFollower if subscribe.is_none() => {
                return Ok((skipped("not_follower"), None))
            }
            _ => None,
        }
    };
    let Some((route, template)) = route else {
        // No call is made: WeChat would answer 43101 and the send would be wasted.
        let reason = if subscribe_id.is_some() {
            "no_quota"
        } else {
            "no_template"
        };
        return Ok((skipped(reason), subscribe_id));
    };
    let used = Some(template.template_id.clone());

    let Ok(payload) = serde_json::from_str::<Value>(&row.payload) else {
        return Ok((failed("payload is not JSON".into()), used));
    };
    let vars = variables(ctx, row, &payload).await?;
    let data = match templates::render(&row.kind, &template.keywords, &vars, tz) {
        Ok(data) => data,
        Err(e) => return Ok((failed(format!("render: {e}")), used)),
    };
    let page = match &template.page {
        Some(p) => match templates::render_page(&row.kind, p, &vars) {
            Ok(p) => Some(p),
            Err(e) => return Ok((failed(format!("render: {e}")), used)),
        },
        None => None,
    };

    if let Some(until) = paused_until(ctx, route.channel()).await {
        let outcome = Outcome::Deferred {
            until,
            reason: "paused: 45009 daily limit".into(),
            counts: false,
        };
        return Ok((outcome, used));
    }
    // Taken as late as possible, after everything that could stop the message without WeChat.
    let slot = if marketing {
        match take_marketing_slot(ctx, row.customer_id).await? {
            Some(slot) => Some(slot),
            None => return Ok((skipped("frequency_cap"), used)),
        }
    } else {
        None
    };
    wait_for_rate(ctx).await;

    let data: Vec<(&str, String)> = data.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let outcome = match &route {
        Route::Subscribe => {
            let msg = Outgoing {
                account_id: account.id,
                openid: &account.openid,
                template_id: &template.template_id,
                page: page.as_deref(),
                data: &data,
            };
            match subscriptions::send(ctx.db, ctx.wechat, &msg).await {
                Ok(msgid) => Outcome::Sent {
                    msgid,
                    channel: channel::SUBSCRIBE,
                },
                // NoQuota: spent meanwhile, no call was made. Refused: WeChat said 43101 and
                // the quota is now zero.
                Err(SendError::NoQuota | SendError::Refused) => skipped("no_quota"),
                Err(SendError::InvalidValue(e)) => failed(format!("47003 {e}")),
                Err(SendError::Wechat(e)) => wechat_outcome(ctx, row, e, channel::SUBSCRIBE).await,
                Err(SendError::Db(e)) => transient(ctx, row, format!("database: {e}")),
            }
        }
        Route::OfficialAccount { client, oa_openid } => {
            let opens = page.as_deref().map(|p| (ctx.wechat.appid(), p));
            match official_account::send(client, oa_openid, &template.template_id, opens, &data)
                .await
            {
                Ok(msgid) => Outcome::Sent {
                    msgid,
                    channel: channel::OA_TEMPLATE,
                },
                Err(OaSendError::InvalidValue(e)) => failed(format!("47003 {e}")),
                Err(OaSendError::Wechat(e)) if e.code() == Some(official_account::NOT_FOLLOWER) => {
                    official_account::record_follow(
                        ctx.db,
                        oa_openid,
                        false,
                        None,
                        ctx.clock.now(),
                    )
                    .await?;
                    skipped("not_follower")
                }
                Err(OaSendError::Wechat(e)) => {
                    wechat_outcome(ctx, row, e, channel::OA_TEMPLATE).await
                }
            }
        }
    };
    if let Some(slot) = slot {
        if !matches!(outcome, Outcome::Sent { .. }) {
            give_back_marketing_slot(ctx, row.customer_id, slot).await;
        }
    }
    Ok((outcome, used))
}

/// A kind's template on one channel: WeChat's id, the page it opens, the keyword expressions.
#[derive(Clone)]
struct ChannelTemplate {
    template_id: String,
    page: Option<String>,
    keywords: String,
}

/// Which channel a message goes out on.
enum Route<'a> {
    Subscribe,
    OfficialAccount {
        client: &'a WechatClient,
        oa_openid: String,
    },
}

impl Route<'_> {
    fn channel(&self) -> &'static str {
        match self {
            Route::Subscribe => channel::SUBSCRIBE,
            Route::OfficialAccount { .. } => channel::OA_TEMPLATE,
        }
    }
}

enum SecondChannel<'a> {
    Ready(Route<'a>, ChannelTemplate),
    /// The kind has a 服务号 template but the customer does not follow (or is not linked).
    NotFollower,
    /// No 服务号, or no template of the kind for it.
    Unavailable,
}

/// The kind's active template on `channel` as staff saved it (read once per round).
async fn stored_template(
    ctx: &SendContext<'_>,
    kind: &str,
    channel: &'static str,
) -> Result<Option<ChannelTemplate>, DbErr> {
    let key = (kind.to_string(), channel);
    if let Some(known) = ctx
        .templates
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(known.clone());
    }
    let found = message_template::Entity::find()
        .filter(message_template::Column::Kind.eq(kind))
        .filter(message_template::Column::Channel.eq(channel))
        .filter(message_template::Column::Active.eq(true))
        .one(ctx.db)
        .await?
        .map(|t| ChannelTemplate {
            template_id: t.template_id,
            page: t.page,
            keywords: t.keywords,
        })
        .filter(|t| !t.template_id.trim().is_empty());
    ctx.templates
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, found.clone());
    Ok(found)
}

/// The kind's subscribe template: the saved one, else the built-in default; `None` when
/// neither names a WeChat template.
async fn subscribe_template(
    ctx: &SendContext<'_>,
    kind: &str,
    spec: &templates::KindSpec,
    tz: chrono_tz::Tz,
) -> Result<Option<ChannelTemplate>, DbErr> {
    if let Some(t) = stored_template(ctx, kind, channel::SUBSCRIBE).await? {
        return Ok(Some(t));
    }
    let d = templates::default_view(spec, ctx.sandbox, tz);
    let keywords = serde_json::to_string(&d.keywords)
        .map_err(|e| DbErr::Custom(format!("default keywords: {e}")))?;
    Ok(Some(ChannelTemplate {
        template_id: d.template_id,
        page: d.page,
        keywords,
    })
    .filter(|t| !t.template_id.trim().is_empty()))
}

async fn second_channel<'a>(
    ctx: &SendContext<'a>,
    kind: &str,
    account: &wechat_account::Model,
) -> Result<SecondChannel<'a>, DbErr> {
    let Some(client) = ctx.oa else {
        return Ok(SecondChannel::Unavailable);
    };
    let Some(template) = stored_template(ctx, kind, channel::OA_TEMPLATE).await? else {
        return Ok(SecondChannel::Unavailable);
    };
    let Some(unionid) = account.unionid.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(SecondChannel::NotFollower);
    };
    Ok(match official_account::follower(ctx.db, unionid).await? {
        Some(oa_openid) => {
            SecondChannel::Ready(Route::OfficialAccount { client, oa_openid }, template)
        }
        None => SecondChannel::NotFollower,
    })
}

/// A customer's marketing slot as this sender took it: the instant written and the value it
/// replaced, to put back if the message is not sent after all.
struct MarketingSlot {
    taken_at: DateTime<Utc>,
    previous: Option<DateTime<Utc>>,
}

/// Takes the customer's slot under the frequency cap: one conditional UPDATE decides, so of two
/// senders (or a campaign and an automation) racing for one customer, exactly one wins. `None`
/// when the customer had a marketing message within the cap.
async fn take_marketing_slot(
    ctx: &SendContext<'_>,
    customer_id: i64,
) -> Result<Option<MarketingSlot>, DbErr> {
    // Microseconds: what PostgreSQL stores, so the give-back's equality test matches.
    let now = ctx.clock.now().trunc_subsecs(6);
    let cap = Duration::days(i64::from(ctx.settings.messaging.marketing_cap_days));
    // Read only to know what to put back; the UPDATE below is what decides.
    let previous: Option<Option<DateTime<Utc>>> = customer::Entity::find_by_id(customer_id)
        .select_only()
        .column(customer::Column::LastMarketingAt)
        .into_tuple()
        .one(ctx.db)
        .await?;
    let taken = customer::Entity::update_many()
        .col_expr(customer::Column::LastMarketingAt, Expr::value(now))
        .filter(customer::Column::Id.eq(customer_id))
        .filter(
            Condition::any()
                .add(customer::Column::LastMarketingAt.is_null())
                .add(customer::Column::LastMarketingAt.lte(now - cap)),
        )
        .exec(ctx.db)
        .await?;
    if taken.rows_affected == 0 {
        return Ok(None);
    }
    Ok(Some(MarketingSlot {
        taken_at: now,
        previous: previous.flatten(),
    }))
}

/// Puts back what the slot replaced, unless another message has taken the slot since.
async fn give_back_marketing_slot(ctx: &SendContext<'_>, customer_id: i64, slot: MarketingSlot) {
    let restored = customer::Entity::update_many()
        .col_expr(
            customer::Column::LastMarketingAt,
            Expr::value(slot.previous),
        )
        .filter(customer::Column::Id.eq(customer_id))
        .filter(customer::Column::LastMarketingAt.eq(slot.taken_at))
        .exec(ctx.db)
        .await;
    if let Err(e) = restored {
        // The customer then waits out one cap period without a message: a lost greeting, not
        // a message too many, so it is logged rather than retried.
        tracing::warn!(customer_id, error = %e, "cannot give back a marketing slot");
    }
}

/// The voucher a marketing message carries, if any (`payload.voucher`, set by the automations).
fn attached_voucher(row: &outbox_message::Model) -> Option<VoucherSpec> {
    if !outbox::kind::is_marketing(&row.kind) {
        return None;
    }
    let payload: Value = serde_json::from_str(&row.payload).ok()?;
    let voucher = payload.get("voucher").filter(|v| !v.is_null())?;
    serde_json::from_value(voucher.clone()).ok()
}

/// Records `sent` and issues the message's voucher in one transaction: the record's
/// conditional UPDATE admits one worker, so the voucher is issued once. If the voucher cannot
/// be issued, the message (already delivered) is still recorded, without it.
async fn record_with_voucher(
    ctx: &SendContext<'_>,
    row: &outbox_message::Model,
    claimed_by: &str,
    outcome: &Outcome,
    template_id: Option<&str>,
    spec: &VoucherSpec,
) -> Result<bool, DbErr> {
    let now = ctx.clock.now();
    let today = ctx.settings.loyalty.calendar().date_of(now);
    let store_id = serde_json::from_str::<Value>(&row.payload)
        .ok()
        .and_then(|p| p.get("store_id").and_then(Value::as_i64));
    let txn = db::begin_write(ctx.db).await?;
    if !record(&txn, row.id, claimed_by, outcome, template_id, now).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    let member_id: Option<i64> = member::Entity::find()
        .select_only()
        .column(member::Column::Id)
        .filter(member::Column::CustomerId.eq(row.customer_id))
        .into_tuple()
        .one(&txn)
        .await?;
    let new = NewVoucher {
        customer_id: row.customer_id,
        member_id,
        source: match row.kind.as_str() {
            outbox::kind::BIRTHDAY => voucher_source::BIRTHDAY,
            outbox::kind::RECALL => voucher_source::COMEBACK,
            _ => voucher_source::CAMPAIGN,
        },
        kind: spec.voucher_kind().to_string(),
        title: spec.title.clone(),
        face_value_fen: spec.face_value_fen,
        valid_days: spec.valid_days,
        store_id,
        ..Default::default()
    };
    match rewards::issue_voucher(&txn, &new, today).await {
        Ok(v) => {
            txn.commit().await?;
            tracing::info!(
                message_id = row.id,
                voucher_id = v.id,
                "voucher issued with message"
            );
            Ok(true)
        }
        Err(e) => {
            txn.rollback().await?;
            tracing::error!(message_id = row.id, error = %e.describe(), "voucher not issued; message recorded without it");
            record(ctx.db, row.id, claimed_by, outcome, template_id, now).await
        }
    }
}

/// The customer's name and, when the payload names a store, the store's, added to what the
/// payload provides.
async fn variables(
    ctx: &SendContext<'_>,
    row: &outbox_message::Model,
    payload: &Value,
) -> Result<Map<String, Value>, DbErr> {
    let mut vars = templates::payload_vars(&row.kind, payload);
    // A campaign's payload already names the customer and the store; other producers' do not.
    let given = |vars: &Map<String, Value>, key: &str| {
        vars.get(key)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.trim().is_empty())
    };
    if !given(&vars, "customer_name") {
        let name = customer::Entity::find_by_id(row.customer_id)
            .one(ctx.db)
            .await?
            .and_then(|c| c.name)
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| NAMELESS.to_string());
        vars.insert("customer_name".into(), Value::from(name));
    }
    if !given(&vars, "store_name") {
        if let Some(store_id) = payload.get("store_id").and_then(Value::as_i64) {
            if let Some(s) = store::Entity::find_by_id(store_id).one(ctx.db).await? {
                vars.insert("store_name".into(), Value::from(s.name));
            }
        }
    }
    Ok(vars)
}

/// What a WeChat error means for the message.
async fn wechat_outcome(
    ctx: &SendContext<'_>,
    row: &outbox_message::Model,
    e: WechatError,
    channel: &str,
) -> Outcome {
    if e.code() == Some(45009) {
        let until = next_business_day(ctx);
        pause(ctx, channel, until).await;
        return Outcome::Deferred {
            until,
            reason: "45009 daily limit reached".into(),
            counts: false,
        };
    }
    match e {
        // 47003 (a value), 40003 (the openid), 40037 (the template) and other refusals: the
        // same message would be refused again. Busy (-1) and token errors pass.
        WechatError::Api { code, message } if !is_transient_code(code) => Outcome::Failed {
            reason: format!("{code} {message}"),
        },
        // Busy, unreachable, HTTP 5xx, or the shared token could not be had: nothing was sent.
        other => transient(ctx, row, other.to_string()),
    }
}

/// WeChat errcodes that say nothing about the message: busy (-1) and the token errors the
/// client already retried once.
fn is_transient_code(code: i64) -> bool {
    let probe = WechatError::Api {
        code,
        message: String::new(),
    };
    probe.is_unavailable() || probe.is_token_error()
}

/// Deferred with backoff, or failed once the attempts are used up.
fn transient(ctx: &SendContext<'_>, row: &outbox_message::Model, reason: String) -> Outcome {
    let max = i32::try_from(ctx.settings.messaging.max_attempts).unwrap_or(i32::MAX);
    if row.attempts >= max {
        return Outcome::Failed {
            reason: format!("gave up after {} attempts: {reason}", row.attempts),
        };
    }
    Outcome::Deferred {
        until: ctx.clock.now() + backoff(row.attempts),
        reason,
        counts: true,
    }
}

/// The wait after the `attempts`-th try: 30 s, 2 min, 10 min, then hourly.
pub fn backoff(attempts: i32) -> Duration {
    let i = usize::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    Duration::seconds(BACKOFF_SECS[i.min(BACKOFF_SECS.len() - 1)])
}

/// WeChat's daily counts restart with the day; the business zone's midnight is the
/// conservative reading of "the next day" for a chain in China.
fn next_business_day(ctx: &SendContext<'_>) -> DateTime<Utc> {
    let calendar = ctx.settings.loyalty.calendar();
    let today = calendar.date_of(ctx.clock.now());
    calendar.start_of(today.succ_opt().unwrap_or(today))
}

async fn pause(ctx: &SendContext<'_>, channel: &str, until: DateTime<Utc>) {
    let ttl = (until - ctx.clock.now())
        .to_std()
        .unwrap_or_default()
        .max(StdDuration::from_secs(1));
    if let Err(e) = ctx
        .cache
        .set(pause_key(channel), &until.to_rfc3339(), ttl)
        .await
    {
        // Each further message then hits 45009 itself and is deferred the same way.
        tracing::warn!(error = %e, channel, "cannot pause the channel");
    }
    tracing::warn!(%until, channel, "WeChat daily limit reached (45009); channel paused");
}

/// The instant the channel resumes, while it is paused. The instant is compared with the
/// server clock too, so a pinned clock in tests moves past it like real time does.
async fn paused_until(ctx: &SendContext<'_>, channel: &str) -> Option<DateTime<Utc>> {
    match ctx.cache.get(pause_key(channel)).await {
        Ok(Some(v)) => DateTime::parse_from_rfc3339(&v)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .filter(|until| *until > ctx.clock.now()),
        Ok(None) => None,
        Err(e) => {
            // WeChat enforces its limit anyway; a 45009 defers the message if it is still on.
            tracing::warn!(error = %e, "cannot read the channel pause");
            None
        }
    }
}

/// Takes one slot of this second's shared budget, waiting for the next second when it is spent.
/// Real time, not the server clock: the budget is WeChat's, per wall-clock second.
async fn wait_for_rate(ctx: &SendContext<'_>) {
    let limit = i64::from(ctx.settings.messaging.rate_per_second);
    loop {
        let now = Utc::now();
        let key = format!("messaging:rate:{}", now.timestamp());
        match ctx.cache.incr(&key, StdDuration::from_secs(2)).await {
            Ok(n) if n <= limit => return,
            Ok(_) => {
                let left = 1_000_000_000u32.saturating_sub(now.timestamp_subsec_nanos());
                tokio::time::sleep(StdDuration::from_nanos(Ord::max(
                    u64::from(left),
                    1_000_000,
                )))
                .await;
            }
            Err(e) => {
                // The limit protects WeChat's quota, which answers 45009 itself; a cache outage
                // should not hold up booking confirmations.
                tracing::warn!(error = %e, "rate limit unavailable; sending without it");
                return;
            }
        }
    }
}

/// Runs the sender in the background: a round every `messaging.poll_ms`, and at once again
/// after a full batch, so a backlog drains at the rate limit rather than one batch per poll.
pub fn spawn_sender(state: AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let workers = match state.db.get_database_backend() {
        DbBackend::Postgres => Ord::max(state.settings.messaging.workers, 1),
        _ => 1,
    };
    (0..workers).map(|_| spawn_worker(state.clone())).collect()
}

fn spawn_worker(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let worker = worker_id();
        let idle = StdDuration::from_millis(state.settings.messaging.poll_ms);
        let batch = state.settings.messaging.batch;
        tracing::info!(worker = %worker, "outbox sender started");
        loop {
            let ctx = SendContext::new(&state, &worker);
            let more = match run_once(&ctx).await {
                Ok(report) => {
                    if report.claimed > 0 {
                        tracing::info!(?report, "outbox round finished");
                    }
                    report.claimed >= batch
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox round failed; the next one tries again");
                    false
                }
            };
            if !more {
                tokio::time::sleep(idle).await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_stays_hourly() {
        let secs: Vec<i64> = (1..=6).map(|a| backoff(a).num_seconds()).collect();
        assert_eq!(secs, [30, 120, 600, 3600, 3600, 3600]);
        assert_eq!(backoff(0).num_seconds(), 30);
    }

    #[test]
    fn reasons_are_cut_to_the_column() {
        let long = Outcome::Failed {
            reason: "字".repeat(300),
        };
        assert_eq!(long.reason().map(|r| r.chars().count()), Some(200));
        assert_eq!(
            Outcome::Sent {
                msgid: "1".into(),
                channel: channel::SUBSCRIBE
            }
            .reason(),
            None
        );
    }
}
