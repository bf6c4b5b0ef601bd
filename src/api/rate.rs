//! Rate limits on `POST /graphql` (governor's GCRA, keyed): per caller account and per client
//! IP. A refused request gets 429 with `Retry-After` and a GraphQL error coded
//! `RATE_LIMITED`. On by default in production mode only (`RequestLimits::for_mode`);
//! `--rate-limit-account` / `--rate-limit-ip` set them in either mode, 0 turns one off.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::AccountId;

/// Per-request limits of `POST /graphql` set at start: the rates (requests per second a key may
/// make on average; bursts of ten seconds' worth pass; 0: off) and how long one request may
/// run before it is answered 503 `TIMEOUT` (None: no bound); whether the schema is shown.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    pub per_account: u32,
    pub per_ip: u32,
    pub timeout: Option<Duration>,
    /// Schema introspection and GraphiQL (off by default in production mode).
    pub introspection: bool,
}

impl RequestLimits {
    /// Production: 100 requests/s per account (bursts of 1,000) and 1,000/s per IP (bursts of
    /// 10,000), far above a person at a UI. Development (the demo, the tests, load tests with
    /// `bench --url`): no rate limits. Both: a 30 s request timeout; the schema is shown in
    /// development only.
    pub fn for_mode(production: bool) -> Self {
        RequestLimits {
            per_account: if production { 100 } else { 0 },
            per_ip: if production { 1000 } else { 0 },
            timeout: Some(Duration::from_secs(30)),
            introspection: !production,
        }
    }
}

/// Keys seen between two sweeps of idle keys (bounds the limiters' memory).
const SWEEP_EVERY: u64 = 10_000;

pub struct RateLimits {
    account: Option<DefaultKeyedRateLimiter<AccountId>>,
    ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    seen: AtomicU64,
    pub timeout: Option<Duration>,
}

fn limiter<K: Clone + std::hash::Hash + Eq>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(10)).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl RateLimits {
    pub fn new(config: RequestLimits) -> Self {
        RateLimits {
            account: limiter(config.per_account),
            ip: limiter(config.per_ip),
            seen: AtomicU64::new(0),
            timeout: config.timeout,
        }
    }

    /// `Err(wait)` when this request is over a limit (the IP's first, then the account's).
    pub fn check(&self, ip: Option<IpAddr>, account: Option<&AccountId>) -> Result<(), Duration> {
        if self.seen.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            if let Some(l) = &self.account {
                l.retain_recent();
            }
            if let Some(l) = &self.ip {
                l.retain_recent();
            }
        }
        let now = DefaultClock::default().now();
        if let (Some(l), Some(ip)) = (&self.ip, ip) {
            l.check_key(&ip).map_err(|n| n.wait_time_from(now))?;
        }
        if let (Some(l), Some(account)) = (&self.account, account) {
            l.check_key(account).map_err(|n| n.wait_time_from(now))?;
        }
        Ok(())
    }
}
