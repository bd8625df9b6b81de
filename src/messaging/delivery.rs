//! Delivery reports: WeChat answers a subscribe send with a msgid at once and reports later,
//! in `subscribe_msg_sent_event`, whether the message reached the member. The report is written
//! onto the outbox row with that msgid, once (`delivery IS NULL`).
//!
//! A report can overtake the sender's own record of the send (WeChat pushes as soon as it has
//! answered, the sender records right after), so a report that finds no row is tried again a
//! few times over the next half minute rather than dropped.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use entity::outbox_message;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use serde_json::{Map, Value};

/// Waits before looking again for the row of a report that came first.
const LATE_RETRIES: [u64; 3] = [1, 5, 30];
const MAX_ERROR_CHARS: usize = 120;

/// What one item of `subscribe_msg_sent_event` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub msgid: String,
    pub delivered: bool,
    /// WeChat's `ErrorCode` and `ErrorStatus` of a failed delivery.
    pub error: Option<String>,
}

impl Report {
    /// `None` for an item without a msgid. `ErrorCode` "0" is delivered; anything else failed.
    pub fn of(item: &Map<String, Value>) -> Option<Self> {
        // A missing field reads as empty (indexing a Map by a missing key would panic).
        let text = |key: &str| match item.get(key) {
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let msgid = text("MsgID");
        if msgid.is_empty() {
            return None;
        }
        let code = text("ErrorCode");
        let delivered = code == "0";
        let error = (!delivered).then(|| {
            let status = text("ErrorStatus");
            format!("{code} {status}")
                .trim()
                .chars()
                .take(MAX_ERROR_CHARS)
                .collect()
        });
        Some(Self {
            msgid,
            delivered,
            error,
        })
    }
}

/// Writes the report onto its sent row; false when no sent row has that msgid (yet), or the row
/// already has its report.
pub async fn record(
    db: &impl ConnectionTrait,
    report: &Report,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut update = outbox_message::Entity::update_many()
        .col_expr(
            outbox_message::Column::Delivery,
            Expr::value(if report.delivered {
                "delivered"
            } else {
                "failed"
            }),
        )
        .col_expr(outbox_message::Column::DeliveredAt, Expr::value(now));
    if let Some(error) = &report.error {
        update = update.col_expr(outbox_message::Column::Reason, Expr::value(error.clone()));
    }
    let done = update
        .filter(outbox_message::Column::Msgid.eq(&report.msgid))
        .filter(outbox_message::Column::Status.eq("sent"))
        .filter(outbox_message::Column::Delivery.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Tries the reports that found no row again, in the background.
pub fn record_later(db: DatabaseConnection, reports: Vec<Report>) {
    if reports.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut left = reports;
        for wait in LATE_RETRIES {
            tokio::time::sleep(StdDuration::from_secs(wait)).await;
            let mut still = Vec::new();
            for report in left {
                match record(&db, &report, Utc::now()).await {
                    Ok(true) => {}
                    Ok(false) => still.push(report),
                    Err(e) => {
                        tracing::warn!(error = %e, "delivery report not recorded");
                        still.push(report);
                    }
                }
            }
            if still.is_empty() {
                return;
            }
            left = still;
        }
        for report in left {
            // Sent by another system on the same appid, or already reported.
            tracing::info!(msgid = %report.msgid, "delivery report matches no sent message");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn reports_read_success_failure_and_numbers() {
        let ok = Report::of(&item(
            json!({"MsgID": "123", "ErrorCode": "0", "ErrorStatus": "success"}),
        ))
        .unwrap();
        assert!(ok.delivered);
        assert_eq!(ok.error, None);
        let failed = Report::of(&item(json!({"MsgID": 456, "ErrorCode": 10002, "ErrorStatus": "fail: user refuse to accept the msg"}))).unwrap();
        assert_eq!(failed.msgid, "456");
        assert!(!failed.delivered);
        assert_eq!(
            failed.error.as_deref(),
            Some("10002 fail: user refuse to accept the msg")
        );
        assert!(Report::of(&item(json!({"ErrorCode": "0"}))).is_none());
    }
}
