//! Typed settings: defaults in code, then an optional TOML file, then `MEMBERHUB_*` environment
//! variables (`__` between levels, e.g. `MEMBERHUB_SERVER__PORT`). There is no global settings
//! static: `Settings` is loaded once in `main` and handed to `Application::build`, so tests can
//! change any field before spawning the app.

use std::collections::HashMap;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub const ENV_PREFIX: &str = "MEMBERHUB";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub log: LogSettings,
    pub wechat: WechatSettings,
    pub security: SecuritySettings,
    pub staff: StaffSettings,
    pub loyalty: LoyaltySettings,
    pub jobs: JobsSettings,
    pub messaging: MessagingSettings,
}

/// The nightly jobs the server runs itself (DESIGN section 10); `memberhub jobs run NAME` runs
/// one by hand whatever these say.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsSettings {
    /// Run the nightly jobs inside the server. With several instances, a lease in the shared
    /// cache lets only one of them run each job per day.
    pub enabled: bool,
    /// Business-zone time after which the day's jobs run, `HH:MM`.
    pub run_at: String,
}

impl Default for JobsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            run_at: "02:00".into(),
        }
    }
}

impl JobsSettings {
    pub fn run_at_time(&self) -> chrono::NaiveTime {
        chrono::NaiveTime::parse_from_str(&self.run_at, "%H:%M").unwrap_or_default()
    }
}

/// The outbox sender (DESIGN section 7): how fast and how often queued messages go to WeChat.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessagingSettings {
    /// Run the sender inside the server. Several instances may all run it: rows are claimed,
    /// never sent twice, and the rate limit is shared through the cache.
    pub enabled: bool,
    /// WeChat calls per second, counted across all instances.
    pub rate_per_second: u32,
    /// Sender workers per instance on PostgreSQL (they claim with SKIP LOCKED); SQLite, which
    /// has one writer, always runs one.
    pub workers: u32,
    /// Messages claimed per round.
    pub batch: u32,
    /// Pause between rounds when the outbox has nothing due.
    pub poll_ms: u64,
    /// A row claimed longer ago than this belongs to a crashed worker and is taken over.
    pub lease_secs: u64,
    /// Tries before a message WeChat keeps failing on (busy, unreachable) is given up.
    pub max_attempts: u32,
    /// At most one marketing message (birthday, recall, campaign) per customer in this many
    /// days; transactional messages are exempt. 0 turns the cap off.
    pub marketing_cap_days: u32,
}

impl Default for MessagingSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            rate_per_second: 20,
            workers: 2,
            batch: 50,
            poll_ms: 1000,
            lease_secs: 300,
            max_attempts: 6,
            marketing_cap_days: 7,
        }
    }
}

/// Points, tiers and their clocks (DESIGN sections 3 and 4). The rules page members read is
/// generated from these same values.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoyaltySettings {
    /// The zone of business dates: birthdays, member days, expiry dates, "today".
    pub timezone: String,
    /// Enrol a customer automatically on their first paid consumption.
    pub auto_enrol: bool,
    /// Points per whole yuan paid, before the tier multiplier and bonuses.
    pub points_per_yuan: i64,
    /// Earned points expire this many months after the day they were earned.
    pub points_validity_months: u32,
    /// 200 means x2 in the member's birthday month.
    pub birthday_multiplier_pct: i64,
    /// 200 means x2 on member days.
    pub member_day_multiplier_pct: i64,
    /// Days of the month that are member days (会员日).
    pub member_days: Vec<u32>,
    pub checkin_points: i64,
    /// Credited to the referrer on the referred customer's first paid consumption.
    pub referral_points: i64,
    /// Referral credits per referrer per calendar month.
    pub referral_monthly_cap: u32,
    /// An upgraded or renewed tier lasts this long.
    pub tier_validity_months: u32,
    /// Members with points expiring within this many days get a reminder.
    pub expiry_reminder_days: u32,
    /// Members whose tier ends within this many days without meeting it get a reminder.
    pub retention_reminder_days: u32,
    /// How far in the past a consumption's `occurred_at` may lie (late POS postings).
    pub max_backdate_days: u32,
    /// Lifetime of a cached membership card; every change invalidates it sooner.
    pub card_cache_secs: u64,
}

impl Default for LoyaltySettings {
    fn default() -> Self {
        Self {
            timezone: "Asia/Shanghai".into(),
            auto_enrol: false,
            points_per_yuan: 1,
            points_validity_months: 12,
            birthday_multiplier_pct: 200,
            member_day_multiplier_pct: 200,
            member_days: vec![7],
            checkin_points: 10,
            referral_points: 500,
            referral_monthly_cap: 10,
            tier_validity_months: 12,
            expiry_reminder_days: 30,
            retention_reminder_days: 30,
            max_backdate_days: 30,
            card_cache_secs: 300,
        }
    }
}

impl LoyaltySettings {
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
    }

    /// The business calendar of the configured zone.
    pub fn calendar(&self) -> crate::loyalty::calendar::Calendar {
        crate::loyalty::calendar::Calendar::new(self.tz())
    }

    /// Today's business date in the configured zone.
    pub fn today(&self) -> chrono::NaiveDate {
        self.calendar().today()
    }
}

/// Staff sign-in, sessions and what roles may see (DESIGN section 8).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaffSettings {
    /// Mark the console cookie `Secure`; turn on whenever the console is served over https.
    pub cookie_secure: bool,
    /// A session unused for this long ends.
    pub session_idle_secs: u64,
    /// A session ends this long after sign-in, however busy.
    pub session_absolute_secs: u64,
    /// Wrong passwords for one username within `failure_window_secs` before it is locked.
    pub max_failures_per_username: u32,
    /// Wrong passwords from one IP within `failure_window_secs` before it is locked.
    pub max_failures_per_ip: u32,
    pub failure_window_secs: u64,
    /// How long a locked username or IP stays locked.
    pub lockout_secs: u64,
    /// Consultants see memory notes and may reveal phones of every customer of their store,
    /// not only of the customers assigned to them.
    pub consultant_sees_store_detail: bool,
    /// Take the client IP from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
}

impl Default for StaffSettings {
    fn default() -> Self {
        Self {
            cookie_secure: false,
            session_idle_secs: 2 * 3600,
            session_absolute_secs: 12 * 3600,
            max_failures_per_username: 10,
            max_failures_per_ip: 50,
            failure_window_secs: 15 * 60,
            lockout_secs: 15 * 60,
            consultant_sees_store_detail: false,
            trust_forwarded_for: false,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySettings {
    /// 32 bytes of base64: encrypts phones and WeChat session keys at rest (AES-256-GCM).
    pub data_key: Option<SecretString>,
    /// 32 bytes of base64: keys the phone lookup hash. Never change it once data exists.
    pub index_key: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// 0 lets the operating system pick a free port; the startup log names it.
    pub port: u16,
    /// Worker threads; absent means one per CPU core.
    pub workers: Option<usize>,
    /// How long in-flight requests may take to finish after SIGTERM or Ctrl-C.
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            workers: None,
            shutdown_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`. Secret because it may hold a
    /// password.
    pub url: SecretString,
    pub max_connections: u32,
    /// How long a SQLite writer waits for the write lock before giving up.
    pub busy_timeout_ms: u64,
    pub acquire_timeout_secs: u64,
    /// Apply pending migrations when the server starts (`memberhub migrate` does it explicitly).
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://./data/memberhub.db"),
            max_connections: 10,
            busy_timeout_ms: 5_000,
            acquire_timeout_secs: 5,
            migrate_on_start: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// Absent or empty: the in-process cache, which is only correct for a single instance.
    pub url: Option<SecretString>,
    /// Every key this instance writes starts with this, so several deployments (or test runs)
    /// can share one Redis without seeing each other's keys.
    pub key_prefix: String,
    /// Connect and response timeout; keeps `/readyz` and requests from hanging on a dead Redis.
    pub timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "memberhub:".into(),
            timeout_ms: 1_000,
        }
    }
}

impl RedisSettings {
    pub fn url(&self) -> Option<&str> {
        self.url
            .as_ref()
            .map(|u| u.expose_secret())
            .filter(|u| !u.trim().is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WechatSettings {
    /// The mini-program's appid; absent: the built-in sandbox plays WeChat.
    pub appid: Option<String>,
    pub secret: Option<SecretString>,
    /// WeChat's API host; absent: `https://api.weixin.qq.com`, or the sandbox when no appid.
    pub base_url: Option<String>,
    pub timeout_ms: u64,
    /// First pause before retrying a busy (-1) answer; doubles each time.
    pub retry_base_ms: u64,
    /// Attempts on -1 before giving up.
    pub busy_retries: u32,
    /// The Token of the message-push configuration (signatures).
    pub push_token: SecretString,
    /// The EncodingAESKey (43 characters); when set, pushes are expected in safe mode.
    pub push_aes_key: Option<SecretString>,
    /// The clinic's 服务号 (official account), the second channel: template messages to
    /// customers who follow it. Absent: no second channel (the sandbox plays one of its own).
    pub oa_appid: Option<String>,
    pub oa_secret: Option<SecretString>,
}

/// Development push credentials of the sandbox, documented in the README.
pub const SANDBOX_PUSH_TOKEN: &str = "memberhub-sandbox-token";

impl WechatSettings {
    /// True when the built-in sandbox plays WeChat.
    pub fn sandbox(&self) -> bool {
        self.appid.as_deref().is_none_or(|a| a.trim().is_empty())
    }

    pub fn push_aes_key(&self) -> Option<&str> {
        self.push_aes_key
            .as_ref()
            .map(|k| k.expose_secret())
            .filter(|k| !k.trim().is_empty())
    }
}

impl Default for WechatSettings {
    fn default() -> Self {
        Self {
            appid: None,
            secret: None,
            base_url: None,
            timeout_ms: 5_000,
            retry_base_ms: 1_000,
            busy_retries: 3,
            push_token: SecretString::from(SANDBOX_PUSH_TOKEN),
            push_aes_key: None,
            oa_appid: None,
            oa_secret: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `memberhub=debug,sqlx=warn`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

/// Which database engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseSettings {
    pub fn kind(&self) -> Result<DatabaseKind, ConfigError> {
        let url = self.url.expose_secret();
        if url.starts_with("sqlite:") {
            Ok(DatabaseKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseKind::Postgres)
        } else {
            Err(ConfigError::Invalid(
                "database.url must start with sqlite:// or postgres://".into(),
            ))
        }
    }

    /// The URL without credentials, fit for a log line.
    pub fn display_url(&self) -> String {
        redact_url(self.url.expose_secret())
    }
}

/// Drops the `user:password@` part of a URL so it can be logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads settings from the optional TOML file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, None)
    }

    /// Like [`Settings::load`], with the environment given as a map (for tests, which must not
    /// mutate the process environment).
    pub fn load_from(
        file: Option<&Path>,
        env: Option<HashMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let environment = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(env);
        let settings: Settings = builder.add_source(environment).build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.database.kind()?;
        if chrono::NaiveTime::parse_from_str(&self.jobs.run_at, "%H:%M").is_err() {
            return Err(ConfigError::Invalid("jobs.run_at must be HH:MM".into()));
        }
        let m = &self.messaging;
        if m.rate_per_second == 0
            || m.workers == 0
            || m.batch == 0
            || m.poll_ms == 0
            || m.max_attempts == 0
        {
            return Err(ConfigError::Invalid(
                "messaging.rate_per_second, workers, batch, poll_ms and max_attempts must be above 0"
                    .into(),
            ));
        }
        // A lease shorter than a WeChat call (timeouts included) would hand a row to a second
        // worker while the first is still sending it.
        if m.lease_secs < 60 {
            return Err(ConfigError::Invalid(
                "messaging.lease_secs must be at least 60".into(),
            ));
        }
        if m.marketing_cap_days > 365 {
            return Err(ConfigError::Invalid(
                "messaging.marketing_cap_days must be between 0 and 365".into(),
            ));
        }
        let l = &self.loyalty;
        if l.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "loyalty.timezone {:?} is not an IANA zone such as Asia/Shanghai",
                l.timezone
            )));
        }
        if !(1..=3600).contains(&l.card_cache_secs) {
            return Err(ConfigError::Invalid(
                "loyalty.card_cache_secs must be between 1 and 3600".into(),
            ));
        }
        if l.member_days.iter().any(|d| !(1..=31).contains(d)) {
            return Err(ConfigError::Invalid(
                "loyalty.member_days must be days of the month (1-31)".into(),
            ));
        }
        if l.points_per_yuan < 0
            || l.checkin_points < 0
            || l.referral_points < 0
            || l.birthday_multiplier_pct < 100
            || l.member_day_multiplier_pct < 100
            || l.points_validity_months == 0
            || l.tier_validity_months == 0
        {
            return Err(ConfigError::Invalid(
                "loyalty: points must not be negative, multipliers at least 100 and validities at least one month".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "database.max_connections must be at least 1".into(),
            ));
        }
        if let Some(url) = self.redis.url() {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::Invalid(
                    "redis.url must start with redis:// or rediss://".into(),
                ));
            }
        }
        if !self.wechat.sandbox() && self.wechat.secret.is_none() {
            return Err(ConfigError::Invalid(
                "wechat.secret is required when wechat.appid is set".into(),
            ));
        }
        if let Some(key) = self.wechat.push_aes_key() {
            if key.trim().len() != 43 {
                return Err(ConfigError::Invalid(
                    "wechat.push_aes_key must be the 43-character EncodingAESKey".into(),
                ));
            }
        }
        let staff = &self.staff;
        if staff.session_idle_secs == 0
            || staff.session_absolute_secs == 0
            || staff.max_failures_per_username == 0
            || staff.max_failures_per_ip == 0
            || staff.failure_window_secs == 0
            || staff.lockout_secs == 0
        {
            return Err(ConfigError::Invalid(
                "staff session lifetimes, failure limits and lockout must be at least 1".into(),
            ));
        }
        if self.server.workers == Some(0) {
            return Err(ConfigError::Invalid(
                "server.workers must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_run_on_sqlite_and_the_in_process_cache() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.server.host, "127.0.0.1");
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.database.kind().unwrap(), DatabaseKind::Sqlite);
        assert_eq!(s.database.display_url(), "sqlite://./data/memberhub.db");
        assert!(s.redis.url().is_none());
        assert_eq!(s.log.format, LogFormat::Pretty);
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let s = Settings::load_from(
            None,
            env(&[
                ("MEMBERHUB_SERVER__PORT", "0"),
                ("MEMBERHUB_DATABASE__URL", "postgres://u:p@127.0.0.1:5432/x"),
                ("MEMBERHUB_REDIS__URL", "redis://127.0.0.1:6379"),
                ("MEMBERHUB_LOG__FORMAT", "json"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.port, 0);
        assert_eq!(s.database.kind().unwrap(), DatabaseKind::Postgres);
        assert_eq!(s.redis.url(), Some("redis://127.0.0.1:6379"));
        assert_eq!(s.log.format, LogFormat::Json);
    }

    #[test]
    fn file_is_layered_under_the_environment() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(
            file,
            "[server]\nport = 9000\nhost = \"0.0.0.0\"\n[redis]\nkey_prefix = \"chain-a:\""
        )
        .unwrap();
        let s = Settings::load_from(
            Some(file.path()),
            env(&[("MEMBERHUB_SERVER__PORT", "9100")]),
        )
        .unwrap();
        assert_eq!(s.server.host, "0.0.0.0");
        assert_eq!(s.server.port, 9100);
        assert_eq!(s.redis.key_prefix, "chain-a:");
    }

    #[test]
    fn bad_values_are_rejected_naming_the_key() {
        let err = Settings::load_from(None, env(&[("MEMBERHUB_SERVER__PORT", "eighty")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("port"), "{err}");

        let err = Settings::load_from(None, env(&[("MEMBERHUB_SERVER__PROT", "80")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("prot"), "{err}");

        let err = Settings::load_from(None, env(&[("MEMBERHUB_DATABASE__URL", "mysql://x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url"), "{err}");
    }

    #[test]
    fn an_empty_redis_url_means_the_in_process_cache() {
        let s = Settings::load_from(None, env(&[("MEMBERHUB_REDIS__URL", "")])).unwrap();
        assert!(s.redis.url().is_none());
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output_or_display_urls() {
        let s = Settings::load_from(
            None,
            env(&[(
                "MEMBERHUB_DATABASE__URL",
                "postgres://app:hunter2@db.internal:5432/memberhub",
            )]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            s.database.display_url(),
            "postgres://db.internal:5432/memberhub"
        );
    }
}
