//! The second channel (DESIGN section 6, wechat-api.md section 5): template messages of the
//! clinic's 服务号 for customers who follow it. The account knows its followers by its own
//! openid; the unionid (shared with the mini-program when both are bound to one Open Platform
//! account) links a follower to a mini-program member.
//!
//! Followers are learnt from the account's `subscribe` / `unsubscribe` pushes; the push carries
//! no unionid, so `user/info` is asked for it afterwards, outside the push's 5-second answer.
//! A send answered 43004 ("require subscribe") marks the follower as gone.

use chrono::{DateTime, Utc};
use entity::oa_follower;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use serde_json::{json, Map, Value};

use crate::wechat::client::{WechatClient, WechatError};
use crate::wechat::keywords::{self, KeywordError};

/// WeChat's answer when the openid does not follow the account.
pub const NOT_FOLLOWER: i64 = 43004;

/// Records that `oa_openid` follows (or left); a known unionid is kept when none is given.
pub async fn record_follow(
    db: &impl ConnectionTrait,
    oa_openid: &str,
    following: bool,
    unionid: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut update = vec![
        oa_follower::Column::Following,
        oa_follower::Column::UpdatedAt,
    ];
    if unionid.is_some() {
        update.push(oa_follower::Column::Unionid);
    }
    oa_follower::Entity::insert(oa_follower::ActiveModel {
        oa_openid: Set(oa_openid.chars().take(64).collect()),
        unionid: Set(unionid.map(|u| u.chars().take(64).collect())),
        following: Set(following),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(oa_follower::Column::OaOpenid)
            .update_columns(update)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Asks the account who `oa_openid` is and stores the unionid, in the background.
pub fn learn_unionid(db: DatabaseConnection, oa: WechatClient, oa_openid: String) {
    tokio::spawn(async move {
        let path = format!("/cgi-bin/user/info?openid={oa_openid}&lang=zh_CN");
        let outcome = match oa.call(reqwest::Method::GET, &path, None).await {
            Ok(info) => {
                let follows = info["subscribe"].as_i64() == Some(1)
                    || info["subscribe"].as_str() == Some("1");
                let unionid = info["unionid"].as_str().filter(|u| !u.is_empty());
                record_follow(&db, &oa_openid, follows, unionid, Utc::now())
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = outcome {
            // The follower stays without a unionid and so is not reached; the next follow
            // event (or a restart of this lookup) fills it.
            tracing::warn!(error = %e, "official-account follower not looked up");
        }
    });
}

/// The official-account openid of the follower with this unionid, while they follow.
pub async fn follower(db: &impl ConnectionTrait, unionid: &str) -> Result<Option<String>, DbErr> {
    Ok(oa_follower::Entity::find()
        .filter(oa_follower::Column::Unionid.eq(unionid))
        .filter(oa_follower::Column::Following.eq(true))
        .order_by_desc(oa_follower::Column::UpdatedAt)
        .one(db)
        .await?
        .map(|f| f.oa_openid))
}

#[derive(Debug, thiserror::Error)]
pub enum OaSendError {
    #[error("{0}")]
    InvalidValue(KeywordError),
    #[error(transparent)]
    Wechat(#[from] WechatError),
}

/// One template message, opening the mini-program page when there is one. Values are checked
/// against their keyword types first, as for subscribe messages. Returns WeChat's msgid.
pub async fn send(
    oa: &WechatClient,
    oa_openid: &str,
    template_id: &str,
    mini_program: Option<(&str, &str)>,
    data: &[(&str, String)],
) -> Result<String, OaSendError> {
    let mut fields = Map::new();
    for (key, value) in data {
        keywords::check(key, value).map_err(OaSendError::InvalidValue)?;
        fields.insert((*key).to_string(), json!({ "value": value }));
    }
    let mut body = json!({"touser": oa_openid, "template_id": template_id, "data": fields});
    if let Some((appid, page)) = mini_program {
        body["miniprogram"] = json!({"appid": appid, "pagepath": page});
    }
    let answer = oa
        .call(
            reqwest::Method::POST,
            "/cgi-bin/message/template/send",
            Some(&body),
        )
        .await?;
    Ok(match &answer["msgid"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    })
}
