//! The in-process backend on moka. Every write goes through `and_compute_with`, which moka
//! serialises per key, so set-if-absent, compare-and-delete and increment are atomic exactly
//! like their Redis counterparts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache as Moka;
use moka::ops::compute::Op;
use moka::Expiry;

use super::CacheError;

/// Far more than a single clinic's sessions, counters and locks; a bound keeps memory finite.
const MAX_ENTRIES: u64 = 1_000_000;

#[derive(Clone)]
struct Entry {
    value: Arc<str>,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(self) -> Option<Self> {
        match self.expires_at {
            Some(at) if at <= Instant::now() => None,
            _ => Some(self),
        }
    }
}

/// Lets each entry carry its own deadline; an update keeps whatever deadline the new entry holds
/// (the counter copies the old one forward).
struct EntryExpiry;

impl Expiry<String, Entry> for EntryExpiry {
    fn expire_after_create(&self, _key: &String, value: &Entry, now: Instant) -> Option<Duration> {
        value.expires_at.map(|at| at.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        value.expires_at.map(|at| at.saturating_duration_since(now))
    }
}

#[derive(Clone)]
pub(super) struct MemoryStore {
    inner: Moka<String, Entry>,
}

fn entry(value: &str, ttl: Duration) -> Entry {
    Entry {
        value: Arc::from(value),
        expires_at: Some(Instant::now() + ttl),
    }
}

impl MemoryStore {
    pub(super) fn new() -> Self {
        Self {
            inner: Moka::builder()
                .max_capacity(MAX_ENTRIES)
                .expire_after(EntryExpiry)
                .build(),
        }
    }

    async fn current(&self, key: &str) -> Option<Entry> {
        self.inner.get(key).await.and_then(Entry::live)
    }

    pub(super) async fn get(&self, key: &str) -> Option<String> {
        self.current(key).await.map(|e| e.value.to_string())
    }

    pub(super) async fn ttl(&self, key: &str) -> Option<Duration> {
        self.current(key)
            .await
            .and_then(|e| e.expires_at)
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    pub(super) async fn set(&self, key: &str, value: &str, ttl: Duration) {
        let new = entry(value, ttl);
        self.inner
            .entry_by_ref(key)
            .and_compute_with(|_| async move { Op::Put(new) })
            .await;
    }

    pub(super) async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> bool {
        let new = entry(value, ttl);
        let mut inserted = false;
        self.inner
            .entry_by_ref(key)
            .and_compute_with(|existing| {
                let op = match existing.and_then(|e| e.into_value().live()) {
                    Some(_) => Op::Nop,
                    None => {
                        inserted = true;
                        Op::Put(new)
                    }
                };
                async move { op }
            })
            .await;
        inserted
    }

    pub(super) async fn delete(&self, key: &str) -> bool {
        let mut existed = false;
        self.inner
            .entry_by_ref(key)
            .and_compute_with(|existing| {
                existed = existing.and_then(|e| e.into_value().live()).is_some();
                async move { Op::Remove }
            })
            .await;
        existed
    }

    pub(super) async fn delete_if_eq(&self, key: &str, expected: &str) -> bool {
        let mut deleted = false;
        self.inner
            .entry_by_ref(key)
            .and_compute_with(|existing| {
                let op = match existing.and_then(|e| e.into_value().live()) {
                    Some(e) if &*e.value == expected => {
                        deleted = true;
                        Op::Remove
                    }
                    _ => Op::Nop,
                };
                async move { op }
            })
            .await;
        deleted
    }

    pub(super) async fn incr(&self, key: &str, window: Duration) -> Result<i64, CacheError> {
        let mut result: Result<i64, CacheError> = Ok(0);
        self.inner
            .entry_by_ref(key)
            .and_compute_with(|existing| {
                let op = match existing.and_then(|e| e.into_value().live()) {
                    None => {
                        result = Ok(1);
                        Op::Put(entry("1", window))
                    }
                    Some(e) => match e.value.parse::<i64>() {
                        Ok(n) => {
                            let next = n.saturating_add(1);
                            result = Ok(next);
                            Op::Put(Entry {
                                value: Arc::from(next.to_string()),
                                // A counter created without expiry gets one, as in Redis.
                                expires_at: e.expires_at.or(Some(Instant::now() + window)),
                            })
                        }
                        Err(_) => {
                            result = Err(CacheError::NotInteger {
                                key: key.to_string(),
                            });
                            Op::Nop
                        }
                    },
                };
                async move { op }
            })
            .await;
        result
    }

    pub(super) async fn decr(&self, key: &str) -> i64 {
        let mut result = 0;
        self.inner
            .entry_by_ref(key)
            .and_compute_with(|existing| {
                let op = match existing
                    .and_then(|e| e.into_value().live())
                    .and_then(|e| e.value.parse::<i64>().ok().map(|n| (n, e.expires_at)))
                {
                    Some((n, expires_at)) if n > 0 => {
                        result = n - 1;
                        Op::Put(Entry {
                            value: Arc::from((n - 1).to_string()),
                            expires_at,
                        })
                    }
                    _ => Op::Nop,
                };
                async move { op }
            })
            .await;
        result
    }
}
