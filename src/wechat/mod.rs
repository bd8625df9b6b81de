//! WeChat: the API client and its shared access token, message-push signatures and ciphers,
//! keyword rules, the push endpoint, subscription quotas and the sandbox that plays WeChat
//! (see `../shared/reference/wechat-api.md`).

pub mod client;
pub mod crypto;
pub mod keywords;
pub mod official_account;
pub mod push;
pub mod sandbox;
pub mod subscriptions;
