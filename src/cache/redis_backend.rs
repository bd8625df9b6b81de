//! The Redis backend. The connection manager reconnects on its own after Redis restarts; the
//! timeouts make calls fail fast while it is gone, so `/readyz` can say so instead of hanging.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::CacheError;

// Compare-and-delete must be one atomic step, or a value written by another instance between
// the GET and the DEL would be lost.
const DELETE_IF_EQ: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

// INCR then PEXPIRE in one script: a crash between the two would leave a counter that never
// resets. A counter found without expiry (written by hand) also gets one.
const INCR_WITH_EXPIRY: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
";

// Gives one back to a counter, never below zero; DECR keeps the key's expiry.
const DECR_TO_ZERO: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
";

// Follows a pointer in one round trip: reads KEYS[1], then each ARGV template with `{}` replaced
// by that value. The hottest read (a member's card by their token) needs both steps; two round
// trips would double its cost. The derived keys are not declared, which standalone Redis and
// Sentinel accept (Redis Cluster would need them in one slot).
const GET_THEN_GET: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return {false} end
local out = {v}
for i = 1, #ARGV do
  local k = string.gsub(ARGV[i], '{}', v, 1)
  out[#out + 1] = redis.call('GET', k)
end
return out
";

#[derive(Clone)]
pub(super) struct RedisStore {
    conn: ConnectionManager,
    delete_if_eq: Script,
    incr: Script,
    decr: Script,
    follow: Script,
}

fn millis(d: Duration) -> u64 {
    // Redis rejects a zero expiry; the smallest real one is a millisecond.
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    pub(super) async fn connect(url: &str, timeout: Duration) -> Result<Self, CacheError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = tokio::time::timeout(
            timeout * 3,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| CacheError::Timeout)??;
        Ok(Self {
            conn,
            delete_if_eq: Script::new(DELETE_IF_EQ),
            incr: Script::new(INCR_WITH_EXPIRY),
            decr: Script::new(DECR_TO_ZERO),
            follow: Script::new(GET_THEN_GET),
        })
    }

    pub(super) async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    pub(super) async fn follow(
        &self,
        key: &str,
        templates: &[String],
    ) -> Result<Vec<Option<String>>, CacheError> {
        let mut conn = self.conn.clone();
        let mut call = self.follow.key(key);
        for t in templates {
            call.arg(t);
        }
        Ok(call.invoke_async(&mut conn).await?)
    }

    pub(super) async fn mget(&self, keys: &[String]) -> Result<Vec<Option<String>>, CacheError> {
        let mut conn = self.conn.clone();
        // MGET answers one value per key, nil for absent ones, in one round trip.
        let values: Vec<Option<String>> =
            redis::cmd("MGET").arg(keys).query_async(&mut conn).await?;
        Ok(values)
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut conn = self.conn.clone();
        Ok(conn.get(key).await?)
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    pub(super) async fn set_nx(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let mut conn = self.conn.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(reply.is_some())
    }

    pub(super) async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let mut conn = self.conn.clone();
        let n: i64 = conn.del(key).await?;
        Ok(n > 0)
    }

    pub(super) async fn delete_if_eq(&self, key: &str, expected: &str) -> Result<bool, CacheError> {
        let mut conn = self.conn.clone();
        let n: i64 = self
            .delete_if_eq
            .key(key)
            .arg(expected)
            .invoke_async(&mut conn)
            .await?;
        Ok(n > 0)
    }

    pub(super) async fn incr(&self, key: &str, window: Duration) -> Result<i64, CacheError> {
        let mut conn = self.conn.clone();
        self.incr
            .key(key)
            .arg(millis(window))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| {
                let is_server_error = matches!(e.kind(), redis::ErrorKind::Server(_));
                if is_server_error && e.to_string().contains("not an integer") {
                    CacheError::NotInteger {
                        key: key.to_string(),
                    }
                } else {
                    CacheError::Redis(e)
                }
            })
    }

    pub(super) async fn decr(&self, key: &str) -> Result<i64, CacheError> {
        let mut conn = self.conn.clone();
        Ok(self.decr.key(key).invoke_async(&mut conn).await?)
    }

    pub(super) async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let mut conn = self.conn.clone();
        let ms: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await?;
        // -2: no such key; -1: no expiry.
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }
}
