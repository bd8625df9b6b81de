//! The shared cache: Redis for a chain running several instances, an in-process store for a
//! single instance on a laptop. Both backends behave the same (the test suite runs against
//! each): values with a TTL, delete, compare-and-delete, an atomic counter that expires (rate
//! limits), and a lock with an owner token. Every key is namespaced by the configured prefix.

mod memory;
mod redis_backend;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::RedisSettings;
use memory::MemoryStore;
use redis_backend::RedisStore;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("cache value of {key} is not an integer")]
    NotInteger { key: String },
    #[error("cache value of {key} is not valid JSON: {source}")]
    Json {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cache operation timed out")]
    Timeout,
}

#[derive(Clone)]
enum Backend {
    Memory(MemoryStore),
    Redis(RedisStore),
}

#[derive(Clone)]
pub struct Cache {
    prefix: String,
    backend: Backend,
}

/// A held lock. Only the holder's token can release it, so a holder whose lock expired (and was
/// taken by someone else) cannot release the new owner's lock.
#[derive(Debug)]
#[must_use = "a lock should be released when the work is done"]
pub struct Lock {
    key: String,
    token: String,
}

impl Lock {
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Cache {
    /// Redis when a URL is configured, otherwise the in-process store.
    pub async fn connect(settings: &RedisSettings) -> Result<Self, CacheError> {
        match settings.url() {
            Some(url) => {
                Self::redis(
                    url,
                    &settings.key_prefix,
                    Duration::from_millis(settings.timeout_ms),
                )
                .await
            }
            None => Ok(Self::in_memory(&settings.key_prefix)),
        }
    }

    pub fn in_memory(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            backend: Backend::Memory(MemoryStore::new()),
        }
    }

    pub async fn redis(url: &str, prefix: &str, timeout: Duration) -> Result<Self, CacheError> {
        Ok(Self {
            prefix: prefix.to_string(),
            backend: Backend::Redis(RedisStore::connect(url, timeout).await?),
        })
    }

    /// "redis" or "in-process", for logs and health output.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "in-process",
            Backend::Redis(_) => "redis",
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Redis(r) => r.ping().await,
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Memory(m) => Ok(m.get(&key).await),
            Backend::Redis(r) => r.get(&key).await,
        }
    }

    /// Reads `key`, then, in the same round trip, every key made by putting its value into
    /// `templates` at `{}`. Returns the value and one answer per template; nothing when `key`
    /// is absent.
    pub async fn follow(
        &self,
        key: &str,
        templates: &[&str],
    ) -> Result<Option<(String, Vec<Option<String>>)>, CacheError> {
        let key = self.key(key);
        let templates: Vec<String> = templates.iter().map(|t| self.key(t)).collect();
        let mut values = match &self.backend {
            Backend::Memory(m) => {
                let Some(v) = m.get(&key).await else {
                    return Ok(None);
                };
                let mut values = vec![Some(v.clone())];
                for t in &templates {
                    values.push(m.get(&t.replacen("{}", &v, 1)).await);
                }
                values
            }
            Backend::Redis(r) => r.follow(&key, &templates).await?,
        };
        if values.is_empty() {
            return Ok(None);
        }
        let Some(v) = values.remove(0) else {
            return Ok(None);
        };
        values.resize(templates.len(), None);
        Ok(Some((v, values)))
    }

    /// Several keys in one round trip; one answer per key, in order.
    pub async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<String>>, CacheError> {
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match &self.backend {
            Backend::Memory(m) => {
                let mut values = Vec::with_capacity(keys.len());
                for k in &keys {
                    values.push(m.get(k).await);
                }
                Ok(values)
            }
            Backend::Redis(r) => r.mget(&keys).await,
        }
    }

    pub async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Memory(m) => {
                m.set(&key, value, ttl).await;
                Ok(())
            }
            Backend::Redis(r) => r.set(&key, value, ttl).await,
        }
    }

    /// Sets the value only if the key is absent; true when this call set it.
    pub async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, CacheError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Memory(m) => Ok(m.set_nx(&key, value, ttl).await),
            Backend::Redis(r) => r.set_nx(&key, value, ttl).await,
        }
    }

    /// Deletes the key; true when it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Memory(m) => Ok(m.delete(&key).await),
            Backend::Redis(r) => r.delete(&key).await,
        }
    }

    /// Deletes the key only while it still holds `expected`; true when it did. This is how a
    /// caller removes a value it knows to be stale without clobbering a fresher one written by
    /// another instance in the meantime.
    pub async fn delete_if_eq(&self, key: &str, expected: &str) -> Result<bool, CacheError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Memory(m) => Ok(m.delete_if_eq(&key, expected).await),
            Backend::Redis(r) => r.delete_if_eq(&key, expected).await,
        }
    }

    /// Adds one and returns the new value. The key expires `window` after the increment that
    /// created it (a fixed window, as rate limits need); later increments keep that expiry.
    pub async fn incr(&self, key: &str, window: Duration) -> Result<i64, CacheError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Memory(m) => m.incr(&key, window).await,
            Backend::Redis(r) => r.incr(&key, window).await,
        }
    }

    /// Gives one back to a counter made by [`Cache::incr`] (never below zero, expiry kept), for
    /// an attempt that turned out not to count; returns the new value.
    pub async fn decr(&self, key: &str) -> Result<i64, CacheError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Memory(m) => Ok(m.decr(&key).await),
            Backend::Redis(r) => r.decr(&key).await,
        }
    }

    /// Time left before the key expires; `None` when it is absent or never expires.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Memory(m) => Ok(m.ttl(&key).await),
            Backend::Redis(r) => r.ttl(&key).await,
        }
    }

    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CacheError> {
        match self.get(key).await? {
            None => Ok(None),
            Some(raw) => serde_json::from_str(&raw)
                .map(Some)
                .map_err(|source| CacheError::Json {
                    key: key.to_string(),
                    source,
                }),
        }
    }

    pub async fn set_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let raw = serde_json::to_string(value).map_err(|source| CacheError::Json {
            key: key.to_string(),
            source,
        })?;
        self.set(key, &raw, ttl).await
    }

    /// Takes the lock `name` for at most `ttl` if nobody holds it.
    pub async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<Lock>, CacheError> {
        let key = format!("lock:{name}");
        let token = uuid::Uuid::new_v4().to_string();
        if self.set_nx(&key, &token, ttl).await? {
            Ok(Some(Lock { key, token }))
        } else {
            Ok(None)
        }
    }

    /// Waits up to `wait` for the lock, polling with a short backoff.
    pub async fn lock(
        &self,
        name: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Option<Lock>, CacheError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(lock) = self.try_lock(name, ttl).await? {
                return Ok(Some(lock));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Releases the lock if this holder still owns it; false when it had expired or been taken
    /// over, in which case the new owner keeps it.
    pub async fn unlock(&self, lock: Lock) -> Result<bool, CacheError> {
        self.delete_if_eq(&lock.key, &lock.token).await
    }
}
