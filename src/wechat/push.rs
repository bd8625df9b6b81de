//! The message-push endpoint (wechat-api.md section 6): WeChat verifies the URL with a GET and
//! then POSTs events, in plaintext or safe mode, as JSON or XML. Nothing is believed before its
//! signature (and in safe mode its msg_signature and appid trailer) checks out; anything that
//! fails gets 401 and changes nothing. A retried push (same sender, time and event) is handled
//! once. The answer is `success`.

use actix_web::{get, post, web, HttpResponse};
use chrono::Utc;
use entity::{wechat_account, wechat_push_event};
use quick_xml::events::Event;
use quick_xml::Reader;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::db;
use crate::error::{ApiError, ErrorEnvelope};
use crate::messaging::delivery;
use crate::state::AppState;
use crate::wechat::crypto::{msg_signature, push_signature, signature_matches, PushCipher};
use crate::wechat::official_account;
use crate::wechat::subscriptions::{self, Source};

#[derive(Deserialize, utoipa::IntoParams)]
pub struct PushQuery {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub echostr: Option<String>,
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
}

fn rejected() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "签名校验失败",
    )
}

fn signed(state: &AppState, q: &PushQuery) -> Result<(String, String), ApiError> {
    let (Some(sig), Some(ts), Some(nonce)) = (&q.signature, &q.timestamp, &q.nonce) else {
        return Err(rejected());
    };
    let token = state.settings.wechat.push_token.expose_secret();
    if !signature_matches(&push_signature(token, ts, nonce), sig) {
        return Err(rejected());
    }
    Ok((ts.clone(), nonce.clone()))
}

#[utoipa::path(tag = "wechat", params(PushQuery), responses((status = 200, description = "the echostr", content_type = "text/plain"), (status = 401, body = ErrorEnvelope)))]
#[get("/wechat/push")]
pub async fn verify(
    state: web::Data<AppState>,
    q: web::Query<PushQuery>,
) -> Result<HttpResponse, ApiError> {
    signed(&state, &q)?;
    let echostr = q.echostr.clone().unwrap_or_default();
    Ok(HttpResponse::Ok().content_type("text/plain").body(echostr))
}

/// A text node's value, with the five XML entities resolved.
fn entity(name: &[u8]) -> &'static str {
    match name {
        b"amp" => "&",
        b"lt" => "<",
        b"gt" => ">",
        b"quot" => "\"",
        b"apos" => "'",
        _ => "",
    }
}

/// Reads a WeChat XML push into the same shape as its JSON form: top-level fields as strings,
/// every `<List>` (under whatever wrapper) collected into `List`, an array.
pub fn xml_to_json(xml: &str) -> Option<Value> {
    let mut reader = Reader::from_str(xml);
    let mut root = Map::new();
    let mut list: Vec<Value> = Vec::new();
    let mut item: Option<Map<String, Value>> = None;
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).to_string();
                if name == "List" {
                    item = Some(Map::new());
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.decode().ok()?),
            Event::CData(c) => text.push_str(&String::from_utf8_lossy(&c.into_inner())),
            Event::GeneralRef(r) => text.push_str(entity(r.as_ref())),
            Event::End(_) => {
                let name = path.pop()?;
                let value = Value::String(std::mem::take(&mut text).trim().to_string());
                if name == "List" {
                    list.push(Value::Object(item.take()?));
                } else if let Some(current) = item.as_mut() {
                    current.insert(name, value);
                } else if path.len() == 1 {
                    root.insert(name, value);
                }
            }
            Event::Eof => break,
            // DOCTYPE is refused rather than ignored: WeChat never sends one, an attacker might.
            Event::DocType(_) => return None,
            _ => {}
        }
    }
    if !list.is_empty() {
        root.insert("List".into(), Value::Array(list));
    }
    Some(Value::Object(root))
}

fn parse(body: &str) -> Option<Value> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).ok().filter(Value::is_object)
    } else if trimmed.starts_with('<') {
        xml_to_json(trimmed)
    } else {
        None
    }
}

/// `List` is an object for one item and an array for several; both become a list.
fn items(msg: &Value) -> Vec<Map<String, Value>> {
    match &msg["List"] {
        Value::Array(a) => a.iter().filter_map(|v| v.as_object().cloned()).collect(),
        Value::Object(o) => vec![o.clone()],
        _ => Vec::new(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

#[utoipa::path(
    tag = "wechat",
    params(PushQuery),
    request_body(content = String, description = "JSON or XML, plaintext or safe mode", content_type = "application/json"),
    responses((status = 200, description = "`success`", content_type = "text/plain"), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope))
)]
#[post("/wechat/push")]
pub async fn receive(
    state: web::Data<AppState>,
    q: web::Query<PushQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (ts, nonce) = signed(&state, &q)?;
    let raw = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_body", "推送内容不是 UTF-8"))?;
    let outer =
        parse(raw).ok_or_else(|| ApiError::bad_request("invalid_body", "无法解析推送内容"))?;
    let plaintext = match state.settings.wechat.push_aes_key() {
        Some(key) => {
            // Safe mode: the encrypted part is what counts, and it must carry its own signature.
            if q.encrypt_type.as_deref() != Some("aes") {
                return Err(rejected());
            }
            let encrypt = outer["Encrypt"].as_str().ok_or_else(rejected)?;
            let expected = msg_signature(
                state.settings.wechat.push_token.expose_secret(),
                &ts,
                &nonce,
                encrypt,
            );
            if !q
                .msg_signature
                .as_deref()
                .is_some_and(|s| signature_matches(&expected, s))
            {
                return Err(rejected());
            }
            // The 服务号's pushes (to the same URL) are encrypted for its own appid.
            let mut appids = vec![state.wechat.appid()];
            appids.extend(state.oa.as_ref().map(|oa| oa.appid()));
            let mut plain = None;
            for appid in appids {
                let cipher = PushCipher::new(key, appid)
                    .map_err(|e| ApiError::internal(anyhow::anyhow!("push cipher: {e}")))?;
                if let Ok(p) = cipher.decrypt(encrypt) {
                    plain = Some(p);
                    break;
                }
            }
            let plain = plain.ok_or_else(rejected)?;
            parse(&plain)
                .ok_or_else(|| ApiError::bad_request("invalid_body", "无法解析推送内容"))?
        }
        None => outer,
    };
    handle(&state, plaintext).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain")
        .body("success"))
}

async fn handle(state: &AppState, msg: Value) -> Result<(), ApiError> {
    let from = text(&msg["FromUserName"]);
    let event = text(&msg["Event"]);
    let created = text(&msg["CreateTime"]);
    // WeChat's retries repeat sender, time, event and content; a digest of the items keeps two
    // different events of the same second apart.
    let digest = crate::wechat::crypto::sorted_sha1(&[&msg["List"].to_string()]);
    let dedup_key = format!("{from}|{created}|{event}|{}", &digest[..16]);
    // Following or leaving the 服务号: its pushes name the account's own openid.
    let follow = match event.as_str() {
        "subscribe" => Some(true),
        "unsubscribe" => Some(false),
        _ => None,
    };
    let appid = state.wechat.appid().to_string();
    let account = match follow {
        Some(_) => None,
        None => {
            wechat_account::Entity::find()
                .filter(wechat_account::Column::Appid.eq(&appid))
                .filter(wechat_account::Column::Openid.eq(&from))
                .one(&state.db)
                .await?
        }
    };
    let follower = from.clone();
    // The receipt and its effects commit together: a crash cannot record a push as done
    // without its effect, and a retry cannot apply it twice.
    let (applied, late) = db::write(&state.db, move |txn| {
        Box::pin(async move {
            let inserted = wechat_push_event::Entity::insert(wechat_push_event::ActiveModel {
                dedup_key: Set(dedup_key),
                event: Set(event.chars().take(60).collect()),
                from_user: Set(from.chars().take(64).collect()),
                payload: Set(msg.clone()),
                received_at: Set(Utc::now()),
                ..Default::default()
            })
            .on_conflict(
                OnConflict::column(wechat_push_event::Column::DedupKey)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            if inserted == 0 {
                tracing::info!(event = %event, "duplicate push ignored");
                return Ok::<_, ApiError>((false, Vec::new()));
            }
            if let Some(following) = follow {
                official_account::record_follow(txn, &from, following, None, Utc::now()).await?;
                return Ok((true, Vec::new()));
            }
            let Some(account) = account else {
                tracing::info!(event = %event, "push for an unknown member kept, nothing to apply");
                return Ok((true, Vec::new()));
            };
            let late = apply(txn, account.id, &event, &msg).await?;
            Ok((true, late))
        })
    })
    .await?;
    if applied && follow == Some(true) {
        if let Some(oa) = &state.oa {
            official_account::learn_unionid(state.db.clone(), oa.clone(), follower);
        }
    }
    delivery::record_later(state.db.clone(), late);
    tracing::debug!(applied, "push handled");
    Ok(())
}

/// Applies a member's push; returns the delivery reports whose sent message is not recorded
/// yet, to be tried again shortly.
async fn apply(
    txn: &sea_orm::DatabaseTransaction,
    account_id: i64,
    event: &str,
    msg: &Value,
) -> Result<Vec<delivery::Report>, ApiError> {
    let mut late = Vec::new();
    match event {
        "subscribe_msg_popup_event" | "subscribe_msg_change_event" => {
            for item in items(msg) {
                // `get`: indexing a Map by a missing key would panic on a malformed push.
                let field = |k: &str| item.get(k).map(text).unwrap_or_default();
                let template = field("TemplateId");
                let status = field("SubscribeStatusString");
                if template.is_empty() {
                    continue;
                }
                // In the change event a reject means the member switched the template off.
                let status = match (event, status.as_str()) {
                    ("subscribe_msg_change_event", "reject") => "off".to_string(),
                    _ => status,
                };
                subscriptions::record_in(txn, account_id, &template, &status, Source::Push).await?;
            }
        }
        "subscribe_msg_sent_event" => {
            for report in items(msg).iter().filter_map(delivery::Report::of) {
                tracing::info!(
                    account_id,
                    msgid = %report.msgid,
                    delivered = report.delivered,
                    "subscribe message delivery reported"
                );
                if !delivery::record(txn, &report, Utc::now()).await? {
                    late.push(report);
                }
            }
        }
        other => tracing::debug!(event = other, "push event kept without action"),
    }
    Ok(late)
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(verify).service(receive);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn xml_pushes_read_like_their_json_form() {
        let xml = r#"<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[OPENID]]></FromUserName>
<CreateTime>1610969440</CreateTime><MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[subscribe_msg_popup_event]]></Event>
<SubscribeMsgPopupEvent>
  <List><TemplateId><![CDATA[VRR0]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List>
  <List><TemplateId><![CDATA[9nLI]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString><PopupScene>2</PopupScene></List>
</SubscribeMsgPopupEvent></xml>"#;
        let v = xml_to_json(xml).unwrap();
        assert_eq!(v["FromUserName"], "OPENID");
        assert_eq!(v["CreateTime"], "1610969440");
        let list = items(&v);
        assert_eq!(list.len(), 2);
        assert_eq!(list[1]["SubscribeStatusString"], "reject");
        assert_eq!(list[0]["PopupScene"], "2");
    }

    #[test]
    fn json_list_may_be_an_object_or_an_array() {
        let one = json!({"List": {"TemplateId": "a"}});
        let many = json!({"List": [{"TemplateId": "a"}, {"TemplateId": "b"}]});
        assert_eq!(items(&one).len(), 1);
        assert_eq!(items(&many).len(), 2);
    }

    #[test]
    fn doctype_is_refused_and_entities_resolved() {
        assert!(xml_to_json(
            r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><A>&e;</A></xml>"#
        )
        .is_none());
        let v = xml_to_json("<xml><A>a &amp; b</A></xml>").unwrap();
        assert_eq!(v["A"], "a & b");
    }
}
