//! The sandbox as the WeChat platform pushing events to the app (wechat-api.md sections 4.3, 6
//! and 13.4): signed, encrypted in safe mode, JSON or XML, `List` as an object for one item and an
//! array for several, retried up to three times until the app answers `success`.

use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::Sandbox;
use crate::wechat::crypto::{msg_signature, push_signature, PushCipher};

pub const SANDBOX_GH: &str = "gh_sandbox000000";
const ATTEMPTS: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushFormat {
    Json,
    Xml,
}

/// Where and how the sandbox pushes: the app's push URL and the push credentials it was given.
#[derive(Clone, Debug)]
pub struct PushTarget {
    pub url: String,
    pub token: String,
    pub aes_key: Option<String>,
    pub appid: String,
    pub format: PushFormat,
}

/// A push as it travels: query parameters and body.
#[derive(Debug, Clone)]
pub struct SignedPush {
    pub query: Vec<(String, String)>,
    pub body: String,
    pub content_type: &'static str,
}

fn wrapper(event: &str) -> &'static str {
    match event {
        "subscribe_msg_popup_event" => "SubscribeMsgPopupEvent",
        "subscribe_msg_change_event" => "SubscribeMsgChangeEvent",
        "subscribe_msg_sent_event" => "SubscribeMsgSentEvent",
        _ => "Items",
    }
}

fn cdata(v: &Value) -> String {
    match v {
        Value::String(s) => format!("<![CDATA[{s}]]>"),
        other => other.to_string(),
    }
}

/// The event's plaintext in the push format.
pub fn render(
    format: PushFormat,
    from_user: &str,
    create_time: i64,
    event: &str,
    items: &[Map<String, Value>],
) -> String {
    match format {
        PushFormat::Json => {
            let list = match items {
                [one] => Value::Object(one.clone()),
                many => Value::Array(many.iter().cloned().map(Value::Object).collect()),
            };
            json!({
                "ToUserName": SANDBOX_GH,
                "FromUserName": from_user,
                "CreateTime": create_time,
                "MsgType": "event",
                "Event": event,
                "List": list,
            })
            .to_string()
        }
        PushFormat::Xml => {
            let mut xml = format!(
                "<xml><ToUserName><![CDATA[{SANDBOX_GH}]]></ToUserName><FromUserName><![CDATA[{from_user}]]></FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event><{w}>",
                w = wrapper(event)
            );
            for item in items {
                xml.push_str("<List>");
                for (k, v) in item {
                    xml.push_str(&format!("<{k}>{}</{k}>", cdata(v)));
                }
                xml.push_str("</List>");
            }
            xml.push_str(&format!("</{}></xml>", wrapper(event)));
            xml
        }
    }
}

/// Signs (and in safe mode encrypts) a plaintext push exactly as WeChat does.
pub fn sign(target: &PushTarget, plaintext: &str) -> SignedPush {
    let timestamp = Utc::now().timestamp().to_string();
    let nonce = (rand::random::<u32>() % 1_000_000_000).to_string();
    let signature = push_signature(&target.token, &timestamp, &nonce);
    let mut query = vec![
        ("signature".to_string(), signature),
        ("timestamp".to_string(), timestamp.clone()),
        ("nonce".to_string(), nonce.clone()),
    ];
    let content_type = match target.format {
        PushFormat::Json => "application/json",
        PushFormat::Xml => "text/xml",
    };
    let Some(cipher) = target
        .aes_key
        .as_deref()
        .and_then(|k| PushCipher::new(k, &target.appid).ok())
    else {
        return SignedPush {
            query,
            body: plaintext.to_string(),
            content_type,
        };
    };
    let encrypt = cipher.encrypt(plaintext);
    query.push(("encrypt_type".into(), "aes".into()));
    query.push((
        "msg_signature".into(),
        msg_signature(&target.token, &timestamp, &nonce, &encrypt),
    ));
    let body = match target.format {
        PushFormat::Json => json!({"ToUserName": SANDBOX_GH, "Encrypt": encrypt}).to_string(),
        PushFormat::Xml => format!(
            "<xml><ToUserName><![CDATA[{SANDBOX_GH}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        ),
    };
    SignedPush {
        query,
        body,
        content_type,
    }
}

impl Sandbox {
    /// Where pushes go; `None` stops pushing.
    pub fn set_push_target(&self, target: Option<PushTarget>) {
        self.lock().push = target;
    }

    pub fn set_push_format(&self, format: PushFormat) {
        if let Some(t) = self.lock().push.as_mut() {
            t.format = format;
        }
    }

    /// Pushes one event to the app and reports how it went.
    pub async fn push_event(
        &self,
        openid: &str,
        event: &str,
        items: Vec<Map<String, Value>>,
    ) -> Value {
        let Some(target) = self.lock().push.clone() else {
            return json!({"delivered": false, "reason": "no push target"});
        };
        // One user's events get distinct CreateTimes, as taps seconds apart would.
        let created = {
            let mut st = self.lock();
            let last = st.last_push_time.entry(openid.to_string()).or_default();
            *last = (*last + 1).max(Utc::now().timestamp());
            *last
        };
        let plaintext = render(target.format, openid, created, event, &items);
        let push = sign(&target, &plaintext);
        let mut attempts = 0;
        let mut delivered = false;
        while attempts < ATTEMPTS && !delivered {
            attempts += 1;
            let answer = self
                .http
                .post(&target.url)
                .query(&push.query)
                .header("content-type", push.content_type)
                .body(push.body.clone())
                .send()
                .await;
            if let Ok(res) = answer {
                let ok = res.status().is_success();
                let text = res.text().await.unwrap_or_default();
                delivered = ok && (text.trim().is_empty() || text.trim() == "success");
            }
        }
        let record =
            json!({"event": event, "openid": openid, "attempts": attempts, "delivered": delivered});
        self.lock().pushes.push(record.clone());
        record
    }
}
