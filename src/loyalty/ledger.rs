//! The points ledger (DESIGN section 4). Every change is an append-only entry with the balance
//! after it; earned points live in lots with their own remaining amount and expiry; spending
//! drains the soonest-expiring lots first; what a reversal cannot recover becomes the member's
//! one debt lot (negative remaining), which later earnings repay first. The invariant
//! `member.points_balance == sum(remaining of live lots)` holds after every function here.
//!
//! Every function runs inside the caller's write transaction and starts by locking the member's
//! row, so one member's ledger operations are serialised (row lock on PostgreSQL, the write
//! lock of BEGIN IMMEDIATE on SQLite). The balance column itself only moves by one conditional
//! `UPDATE ... RETURNING`, in the same transaction as its entry.

use chrono::{NaiveDate, Utc};
use entity::{member, points_draw, points_entry, points_lot};
use sea_orm::sea_query::{Expr, ExprTrait, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

/// What kind of line an entry is, as members see it in their history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Earn,
    Spend,
    Expire,
    Reverse,
    Adjust,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Earn => "earn",
            EntryKind::Spend => "spend",
            EntryKind::Expire => "expire",
            EntryKind::Reverse => "reverse",
            EntryKind::Adjust => "adjust",
        }
    }
}

/// Where points came from or went to; with `ref_id`, the row that explains the entry.
pub mod source {
    pub const CONSUMPTION: &str = "consumption";
    pub const REFUND: &str = "refund";
    pub const REFERRAL: &str = "referral";
    pub const REFERRAL_REVERSAL: &str = "referral_reversal";
    pub const CHECKIN: &str = "checkin";
    pub const ADJUST: &str = "adjust";
    pub const REDEMPTION: &str = "redemption";
    pub const VOUCHER_CANCEL: &str = "voucher_cancel";
    pub const EXPIRY: &str = "expiry";
    pub const DEBT: &str = "debt";
}

const LOT_EARN: &str = "earn";
const LOT_DEBT: &str = "debt";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the balance does not cover the debit")]
    Insufficient,
    #[error("member {0} does not exist")]
    NoMember(i64),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Who and why, common to every posting.
#[derive(Clone, Debug)]
pub struct Posting {
    pub member_id: i64,
    pub kind: EntryKind,
    pub source: &'static str,
    pub ref_id: Option<i64>,
    /// Chinese text shown in the member's history.
    pub reason: String,
    pub staff_id: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Posted {
    pub entry_id: i64,
    pub balance_after: i64,
    /// The lot a credit created.
    pub lot_id: Option<i64>,
}

/// Locks the member's row for the rest of the transaction and returns it.
pub async fn lock_member(
    txn: &DatabaseTransaction,
    member_id: i64,
) -> Result<member::Model, LedgerError> {
    member::Entity::find_by_id(member_id)
        .lock(LockType::Update)
        .one(txn)
        .await?
        .ok_or(LedgerError::NoMember(member_id))
}

/// Moves the balance by `delta` in one conditional statement and returns the new balance;
/// `None` when `floor` is given and the balance would fall below it.
async fn move_balance(
    txn: &DatabaseTransaction,
    member_id: i64,
    delta: i64,
    floor: Option<i64>,
) -> Result<Option<i64>, DbErr> {
    let mut update = member::Entity::update_many()
        .col_expr(
            member::Column::PointsBalance,
            Expr::col(member::Column::PointsBalance).add(delta),
        )
        .col_expr(member::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(member::Column::Id.eq(member_id));
    if let Some(floor) = floor {
        update = update.filter(
            Expr::col(member::Column::PointsBalance)
                .add(delta)
                .gte(floor),
        );
    }
    let rows = update.exec_with_returning(txn).await?;
    Ok(rows.first().map(|m| m.points_balance))
}

async fn write_entry(
    txn: &DatabaseTransaction,
    p: &Posting,
    delta: i64,
    balance_after: i64,
) -> Result<i64, DbErr> {
    let entry = points_entry::ActiveModel {
        member_id: Set(p.member_id),
        kind: Set(p.kind.as_str().to_string()),
        delta: Set(delta),
        balance_after: Set(balance_after),
        source: Set(p.source.to_string()),
        ref_id: Set(p.ref_id),
        reason: Set(p.reason.chars().take(200).collect()),
        staff_id: Set(p.staff_id),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(entry.id)
}

/// Takes `amount` from one lot, only if it still holds that much.
async fn take_from_lot(txn: &DatabaseTransaction, lot_id: i64, amount: i64) -> Result<bool, DbErr> {
    let res = points_lot::Entity::update_many()
        .col_expr(
            points_lot::Column::Remaining,
            Expr::col(points_lot::Column::Remaining).sub(amount),
        )
        .filter(points_lot::Column::Id.eq(lot_id))
        .filter(points_lot::Column::Remaining.gte(amount))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

async fn debt_lot(
    txn: &DatabaseTransaction,
    member_id: i64,
) -> Result<Option<points_lot::Model>, DbErr> {
    points_lot::Entity::find()
        .filter(points_lot::Column::MemberId.eq(member_id))
        .filter(points_lot::Column::Kind.eq(LOT_DEBT))
        .one(txn)
        .await
}

/// Live lots with something left, soonest-expiring first (`prefer` first of all).
async fn spendable_lots(
    txn: &DatabaseTransaction,
    member_id: i64,
) -> Result<Vec<points_lot::Model>, DbErr> {
    points_lot::Entity::find()
        .filter(points_lot::Column::MemberId.eq(member_id))
        .filter(points_lot::Column::Kind.eq(LOT_EARN))
        .filter(points_lot::Column::ExpiredAt.is_null())
        .filter(points_lot::Column::Remaining.gt(0))
        .order_by_asc(points_lot::Column::ExpiresOn)
        .order_by_asc(points_lot::Column::Id)
        .all(txn)
        .await
}

/// Repays the debt lot, if any, from live lots (soonest-expiring first). Balance is unchanged:
/// points move from positive lots into the negative one.
async fn settle_debt(txn: &DatabaseTransaction, member_id: i64) -> Result<(), DbErr> {
    let Some(debt) = debt_lot(txn, member_id).await? else {
        return Ok(());
    };
    let mut owed = -debt.remaining;
    if owed <= 0 {
        return Ok(());
    }
    for lot in spendable_lots(txn, member_id).await? {
        if owed == 0 {
            break;
        }
        let take = std::cmp::min(lot.remaining, owed);
        if take_from_lot(txn, lot.id, take).await? {
            points_lot::Entity::update_many()
                .col_expr(
                    points_lot::Column::Remaining,
                    Expr::col(points_lot::Column::Remaining).add(take),
                )
                .filter(points_lot::Column::Id.eq(debt.id))
                .exec(txn)
                .await?;
            owed -= take;
        }
    }
    Ok(())
}

/// Credits `amount` (> 0) as a new lot earned on `earned_on`, expiring on `expires_on`. Any
/// debt is repaid first, out of the new points.
pub async fn credit(
    txn: &DatabaseTransaction,
    p: &Posting,
    amount: i64,
    earned_on: NaiveDate,
    expires_on: NaiveDate,
) -> Result<Posted, LedgerError> {
    debug_assert!(amount > 0);
    lock_member(txn, p.member_id).await?;
    let lot = points_lot::ActiveModel {
        member_id: Set(p.member_id),
        kind: Set(LOT_EARN.into()),
        source: Set(p.source.to_string()),
        ref_id: Set(p.ref_id),
        amount: Set(amount),
        remaining: Set(amount),
        earned_on: Set(earned_on),
        expires_on: Set(Some(expires_on)),
        expired_at: Set(None),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    settle_debt(txn, p.member_id).await?;
    let balance = move_balance(txn, p.member_id, amount, None)
        .await?
        .ok_or(LedgerError::NoMember(p.member_id))?;
    let entry_id = write_entry(txn, p, amount, balance).await?;
    Ok(Posted {
        entry_id,
        balance_after: balance,
        lot_id: Some(lot.id),
    })
}

/// Debits `amount` (> 0): from `prefer` first (a reversal's own lot), then soonest-expiring
/// lots. With `allow_debt` what the lots cannot cover becomes debt; without it a balance that
/// does not cover the amount is `Insufficient` and nothing changes. Lots past their last day
/// (`today` is the business date) are expired first, so points the nightly job has not reached
/// yet are never spent.
pub async fn debit(
    txn: &DatabaseTransaction,
    p: &Posting,
    amount: i64,
    prefer: Option<i64>,
    allow_debt: bool,
    today: NaiveDate,
) -> Result<Posted, LedgerError> {
    debug_assert!(amount > 0);
    lock_member(txn, p.member_id).await?;
    expire_due(txn, p.member_id, today).await?;
    let floor = if allow_debt { None } else { Some(0) };
    let balance = move_balance(txn, p.member_id, -amount, floor)
        .await?
        .ok_or(LedgerError::Insufficient)?;
    let entry_id = write_entry(txn, p, -amount, balance).await?;

    let mut lots = spendable_lots(txn, p.member_id).await?;
    if let Some(prefer) = prefer {
        if let Some(i) = lots.iter().position(|l| l.id == prefer) {
            let own = lots.remove(i);
            lots.insert(0, own);
        }
    }
    let mut left = amount;
    for lot in lots {
        if left == 0 {
            break;
        }
        let take = std::cmp::min(lot.remaining, left);
        if take_from_lot(txn, lot.id, take).await? {
            draw(txn, entry_id, lot.id, take).await?;
            left -= take;
        }
    }
    if left > 0 {
        // Only reachable with allow_debt: the floor above guarantees the lots cover the rest.
        let debt_id = match debt_lot(txn, p.member_id).await? {
            Some(debt) => {
                points_lot::Entity::update_many()
                    .col_expr(
                        points_lot::Column::Remaining,
                        Expr::col(points_lot::Column::Remaining).sub(left),
                    )
                    .col_expr(
                        points_lot::Column::Amount,
                        Expr::col(points_lot::Column::Amount).sub(left),
                    )
                    .filter(points_lot::Column::Id.eq(debt.id))
                    .exec(txn)
                    .await?;
                debt.id
            }
            None => {
                points_lot::ActiveModel {
                    member_id: Set(p.member_id),
                    kind: Set(LOT_DEBT.into()),
                    source: Set(source::DEBT.into()),
                    ref_id: Set(p.ref_id),
                    amount: Set(-left),
                    remaining: Set(-left),
                    earned_on: Set(today),
                    expires_on: Set(None),
                    expired_at: Set(None),
                    created_at: Set(Utc::now()),
                    ..Default::default()
                }
                .insert(txn)
                .await?
                .id
            }
        };
        draw(txn, entry_id, debt_id, left).await?;
    }
    Ok(Posted {
        entry_id,
        balance_after: balance,
        lot_id: None,
    })
}

async fn draw(
    txn: &DatabaseTransaction,
    entry_id: i64,
    lot_id: i64,
    amount: i64,
) -> Result<(), DbErr> {
    points_draw::ActiveModel {
        entry_id: Set(entry_id),
        lot_id: Set(lot_id),
        amount: Set(amount),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// Puts back what the spend entry `spent_entry_id` took, into the lots it took it from (a
/// cancelled voucher). Lots that expired since keep nothing: those points would have expired
/// anyway. Returns the posting, or `None` when nothing could be returned.
pub async fn restore(
    txn: &DatabaseTransaction,
    p: &Posting,
    spent_entry_id: i64,
) -> Result<Option<Posted>, LedgerError> {
    lock_member(txn, p.member_id).await?;
    let draws = points_draw::Entity::find()
        .filter(points_draw::Column::EntryId.eq(spent_entry_id))
        .all(txn)
        .await?;
    let mut returned = 0;
    for d in draws {
        let res = points_lot::Entity::update_many()
            .col_expr(
                points_lot::Column::Remaining,
                Expr::col(points_lot::Column::Remaining).add(d.amount),
            )
            .filter(points_lot::Column::Id.eq(d.lot_id))
            .filter(points_lot::Column::Kind.eq(LOT_EARN))
            .filter(points_lot::Column::ExpiredAt.is_null())
            .exec(txn)
            .await?;
        if res.rows_affected == 1 {
            returned += d.amount;
        }
    }
    if returned == 0 {
        return Ok(None);
    }
    settle_debt(txn, p.member_id).await?;
    let balance = move_balance(txn, p.member_id, returned, None)
        .await?
        .ok_or(LedgerError::NoMember(p.member_id))?;
    let entry_id = write_entry(txn, p, returned, balance).await?;
    Ok(Some(Posted {
        entry_id,
        balance_after: balance,
        lot_id: None,
    }))
}

/// Expires one lot: what is left of it leaves the balance. Returns the points expired; zero
/// when the lot was already expired (a second run) or empty.
pub async fn expire_lot(txn: &DatabaseTransaction, lot_id: i64) -> Result<i64, LedgerError> {
    let Some(lot) = points_lot::Entity::find_by_id(lot_id).one(txn).await? else {
        return Ok(0);
    };
    lock_member(txn, lot.member_id).await?;
    // Read again under the member's lock: a spend may have drained it meanwhile.
    let Some(lot) = points_lot::Entity::find_by_id(lot_id).one(txn).await? else {
        return Ok(0);
    };
    if lot.kind != LOT_EARN || lot.expired_at.is_some() {
        return Ok(0);
    }
    let res = points_lot::Entity::update_many()
        .col_expr(points_lot::Column::Remaining, Expr::value(0i64))
        .col_expr(points_lot::Column::ExpiredAt, Expr::value(Utc::now()))
        .filter(points_lot::Column::Id.eq(lot.id))
        .filter(points_lot::Column::ExpiredAt.is_null())
        .filter(points_lot::Column::Remaining.eq(lot.remaining))
        .exec(txn)
        .await?;
    if res.rows_affected != 1 || lot.remaining == 0 {
        return Ok(0);
    }
    let balance = move_balance(txn, lot.member_id, -lot.remaining, None)
        .await?
        .ok_or(LedgerError::NoMember(lot.member_id))?;
    let p = Posting {
        member_id: lot.member_id,
        kind: EntryKind::Expire,
        source: source::EXPIRY,
        ref_id: Some(lot.id),
        reason: format!("积分过期（{} 获得）", lot.earned_on.format("%Y-%m-%d")),
        staff_id: None,
    };
    write_entry(txn, &p, -lot.remaining, balance).await?;
    Ok(lot.remaining)
}

/// Expires the member's lots whose last day is before `today` (what the nightly job would do),
/// in the caller's transaction; returns the points expired.
pub async fn expire_due(
    txn: &DatabaseTransaction,
    member_id: i64,
    today: NaiveDate,
) -> Result<i64, LedgerError> {
    let due = points_lot::Entity::find()
        .filter(points_lot::Column::MemberId.eq(member_id))
        .filter(points_lot::Column::Kind.eq(LOT_EARN))
        .filter(points_lot::Column::ExpiredAt.is_null())
        .filter(points_lot::Column::ExpiresOn.lt(today))
        .all(txn)
        .await?;
    let mut expired = 0;
    for lot in due {
        expired += expire_lot(txn, lot.id).await?;
    }
    Ok(expired)
}

/// Members whose balance differs from the sum of their live lots, with both figures. Empty is
/// the only right answer; tests and the `points-audit` job ask.
pub async fn invariant_violations(
    conn: &impl ConnectionTrait,
) -> Result<Vec<(i64, i64, i64)>, DbErr> {
    use sea_orm::{FromQueryResult, Statement};
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        balance: i64,
        lots: i64,
    }
    let sql = "SELECT m.id AS id, m.points_balance AS balance, \
               CAST(COALESCE((SELECT SUM(l.remaining) FROM points_lot l \
                 WHERE l.member_id = m.id AND l.expired_at IS NULL), 0) AS BIGINT) AS lots \
               FROM member m";
    let rows = Row::find_by_statement(Statement::from_string(conn.get_database_backend(), sql))
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.balance != r.lots)
        .map(|r| (r.id, r.balance, r.lots))
        .collect())
}
