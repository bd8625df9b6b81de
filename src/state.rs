use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Settings;
use crate::privacy::Vault;
use crate::wechat::client::WechatClient;
use crate::wechat::sandbox::Sandbox;

/// Everything a handler may need, registered once as `web::Data<AppState>`.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub cache: Cache,
    pub wechat: WechatClient,
    /// The 服务号's client, when there is one (wechat.oa_appid, or the sandbox's).
    pub oa: Option<WechatClient>,
    pub vault: Vault,
    /// The built-in WeChat stand-in, when no appid is configured.
    pub sandbox: Option<Sandbox>,
    /// The server's time, which tests may pin.
    pub clock: Clock,
}
