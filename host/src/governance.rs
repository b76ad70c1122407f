//! Governance: who may call what, how fast, and for how much. Two pipeline phases:
//!
//! ```text
//! authenticate ─► admit (access ─► rate limits ─► budget reservation) ─► pipeline ─► settle
//! ```
//!
//! Invariant: a request that was not admitted sends nothing upstream (admission runs
//! before the filters).
//! Invariant: a budget is never overspent by concurrent requests: each reserves its
//! worst case under its scopes' locks (team, then key) and settles to the real cost.
//! Invariant: the request path takes no global lock: keys are looked up in an
//! immutable table (`ArcSwap`), each key and team has a lock of its own.

pub mod budget;
pub mod keys;
pub mod limits;
pub mod tokens;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;

use crate::canonical::ChatRequest;
use crate::config::{Access, Config, Model};
use crate::error::{GatewayError, Limit};

pub use keys::{Hasher, KeyEntry, KeyTable, Scope, ScopeKind};
pub use limits::Headroom;
pub use tokens::{Counted, Prices};

/// What a budget reserves for a request that sets no `max_tokens` on a deployment that
/// sets no `max_output_tokens`.
pub const DEFAULT_OUTPUT_CAP: u32 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    #[error("state database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("cannot read or create the hash key {path}: {reason}")]
    HashKey { path: String, reason: String },
    #[error("no random numbers: {0}")]
    Random(String),
    #[error("an active key named `{0}` exists; revoke it first or pick another name")]
    KeyExists(String),
}

/// Keys, their teams and their live limits.
pub struct Governance {
    hasher: Hasher,
    table: ArcSwap<KeyTable>,
    state_path: PathBuf,
    /// The `keys` table version the current table was built from.
    seen_version: AtomicI64,
    /// Serialises table rebuilds (config reloads and the store poller); never taken on
    /// the request path.
    rebuild: std::sync::Mutex<()>,
}

fn now_ms() -> i64 {
    crate::state::now_ms()
}

/// The rate-limit headroom a response reports (OpenAI's `x-ratelimit-*` headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub requests: Option<Headroom>,
    pub tokens: Option<Headroom>,
}

impl RateHeaders {
    fn tighter(a: Option<Headroom>, b: Option<Headroom>) -> Option<Headroom> {
        match (a, b) {
            (Some(x), Some(y)) => Some(if y.remaining < x.remaining { y } else { x }),
            (x, None) => x,
            (None, y) => y,
        }
    }

    /// Sets the headers on a response.
    pub fn apply(&self, h: &mut hyper::HeaderMap) {
        use hyper::header::HeaderValue;
        for (kind, room) in [("requests", self.requests), ("tokens", self.tokens)] {
            let Some(r) = room else { continue };
            let set = |h: &mut hyper::HeaderMap, name: String, v: HeaderValue| {
                if let Ok(n) = hyper::header::HeaderName::try_from(name) {
                    h.insert(n, v);
                }
            };
            set(
                h,
                format!("x-ratelimit-limit-{kind}"),
                HeaderValue::from(r.limit),
            );
            set(
                h,
                format!("x-ratelimit-remaining-{kind}"),
                HeaderValue::from(r.remaining),
            );
            if let Ok(v) = HeaderValue::from_str(&limits::reset_text(r.reset_ms)) {
                set(h, format!("x-ratelimit-reset-{kind}"), v);
            }
        }
    }
}

/// An admitted request's reservations; settled with the real usage, or released when
/// dropped unsettled (the request failed before anything was billed).
#[derive(Debug)]
pub struct Admission {
    pub key: Arc<KeyEntry>,
    /// The prompt's counted tokens, when a limit needed them.
    pub prompt_tokens: Option<u32>,
    reserved_tokens: u64,
    reserved_micros: i64,
    /// Output tokens the budget reservation covers (a stream past it is cut).
    pub output_allowance: Option<u32>,
    pub headers: RateHeaders,
    settled: bool,
}

impl Admission {
    fn scopes(&self) -> impl Iterator<Item = &Arc<Scope>> {
        self.key
            .team_scope
            .iter()
            .chain(std::iter::once(&self.key.scope))
    }

    /// Replaces the reservations by the real token count and cost.
    pub fn settle(mut self, tokens: u64, cost_micros: i64) {
        self.release(tokens, cost_micros);
    }

    fn release(&mut self, tokens: u64, cost: i64) {
        if self.settled {
            return;
        }
        self.settled = true;
        let now = now_ms();
        let delta = self.reserved_tokens as f64 - tokens as f64;
        for s in self.scopes() {
            let mut st = s.lock();
            if let Some(b) = &mut st.tpm {
                b.adjust(delta, now);
            }
            if let Some(a) = &mut st.budget {
                a.settle(self.reserved_micros, cost, now);
            }
        }
    }

    /// Whether the key or its team has a budget.
    pub fn has_budget(&self) -> bool {
        self.reserved_micros > 0 || self.output_allowance.is_some()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.release(0, 0);
    }
}

/// Why a request was not admitted, with the headroom to report on the 429.
#[derive(Debug)]
pub struct Refusal {
    pub error: GatewayError,
    pub headers: RateHeaders,
}

impl Governance {
    /// Loads the hash key and the stored keys and builds the table.
    pub fn open(cfg: &Config) -> Result<Governance, GovernanceError> {
        let hasher = Hasher::load(cfg.hash_key.as_ref(), &cfg.state_path)?;
        let g = Governance {
            hasher,
            table: ArcSwap::from_pointee(KeyTable::default()),
            state_path: cfg.state_path.clone(),
            seen_version: AtomicI64::new(-1),
            rebuild: std::sync::Mutex::new(()),
        };
        g.reload(cfg)?;
        Ok(g)
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    pub fn table(&self) -> arc_swap::Guard<Arc<KeyTable>> {
        self.table.load()
    }

    /// Rebuilds the table from `cfg` and the `keys` table (at start, on a config reload,
    /// and when `keys create`/`revoke` changed the store).
    pub fn reload(&self, cfg: &Config) -> Result<(), GovernanceError> {
        let _serial = self
            .rebuild
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let conn = crate::state::open(&self.state_path)?;
        let version = keys::version(&conn)?;
        let stored = keys::list(&conn)?;
        let spend = |kind: ScopeKind, name: &str, since: i64| {
            let (key, team) = match kind {
                ScopeKind::Key => (Some(name), None),
                ScopeKind::Team => (None, Some(name)),
            };
            crate::ledger::report::spend_since(&conn, key, team, since).unwrap_or_else(|e| {
                tracing::warn!(error = %e, scope = name, "cannot read past spend; the budget starts from zero");
                0
            })
        };
        let previous = self.table.load_full();
        let table = KeyTable::build(
            cfg,
            &stored,
            &self.hasher,
            Some(&previous),
            &spend,
            now_ms(),
        );
        self.table.store(Arc::new(table));
        self.seen_version.store(version, Ordering::Release);
        Ok(())
    }

    /// Reloads if `keys create` or `keys revoke` changed the store since the last build.
    pub fn poll(&self, cfg: &Config) -> Result<bool, GovernanceError> {
        if !self.state_path.exists() {
            // Never recreate a database someone removed (or a test's deleted folder).
            return Ok(false);
        }
        let conn = crate::state::open(&self.state_path)?;
        if keys::version(&conn)? == self.seen_version.load(Ordering::Acquire) {
            return Ok(false);
        }
        drop(conn);
        self.reload(cfg)?;
        Ok(true)
    }

    /// Whether requests need a key: once any key exists (or existed: revoking the last
    /// one does not reopen the gateway), they all do.
    pub fn required(&self) -> bool {
        self.table.load().closed()
    }

    /// Finds the key a request presented. `Ok(None)`: no keys exist, the caller is
    /// anonymous (loopback only).
    pub fn authenticate(
        &self,
        presented: Option<&str>,
    ) -> Result<Option<Arc<KeyEntry>>, GatewayError> {
        let table = self.table.load();
        if !table.closed() {
            return Ok(None);
        }
        let presented = presented.ok_or(GatewayError::Unauthorized)?;
        let entry = table
            .get(&self.hasher.hash(presented))
            .ok_or(GatewayError::Unauthorized)?;
        if entry.expires_at.is_some_and(|t| t * 1000 <= now_ms()) {
            return Err(GatewayError::KeyExpired);
        }
        Ok(Some(entry.clone()))
    }

    /// Whether `key` may see `model` (its own list and its team's).
    pub fn allows(key: &KeyEntry, model: &str) -> bool {
        key.access.allows(model) && key.team_access.as_ref().is_none_or(|a| a.allows(model))
    }

    /// Admission: model access, then the key's and its team's rate limits and budgets,
    /// all or nothing. With a budget in force and no `max_tokens` in the request, sets
    /// it to what the reservation covers, so the provider itself enforces the bound.
    pub fn admit(
        &self,
        key: &Arc<KeyEntry>,
        model: &Model,
        req: &mut ChatRequest,
    ) -> Result<Admission, Box<Refusal>> {
        let refuse = |error| {
            Box::new(Refusal {
                error,
                headers: RateHeaders::default(),
            })
        };
        if !Self::allows(key, &model.name) {
            return Err(refuse(GatewayError::ModelNotAllowed(model.name.clone())));
        }
        let accesses: Vec<&Access> = key
            .team_access
            .iter()
            .chain(std::iter::once(&key.access))
            .collect();
        let needs_tokens = accesses.iter().any(|a| a.tpm.is_some());
        let has_budget = accesses.iter().any(|a| a.budget.is_some());
        if !needs_tokens && !has_budget {
            return self.reserve(key, 0, 0, None, None);
        }
        let cap = if has_budget {
            let cap = req.sampling.max_tokens.unwrap_or_else(|| {
                model
                    .deployments
                    .iter()
                    .map(|d| d.max_output_tokens.unwrap_or(DEFAULT_OUTPUT_CAP))
                    .max()
                    .unwrap_or(DEFAULT_OUTPUT_CAP)
            });
            req.sampling.max_tokens = Some(cap);
            Some(cap)
        } else {
            None
        };
        let prices = model
            .deployments
            .iter()
            .map(|d| Prices::of(d))
            .fold(Prices::default(), Prices::max);
        let ask = |prompt: u32| {
            let tokens = u64::from(prompt) + u64::from(req.sampling.max_tokens.unwrap_or(0));
            let micros = cap.map_or(0, |c| prices.cost(u64::from(prompt), u64::from(c)));
            (tokens, micros)
        };
        // First with a bound that costs nothing to compute and can only over-reserve (a
        // token is at least one byte); the tokenizer (~20 µs per KB of prompt) runs only
        // when that bound does not fit, so a request is refused on its real count.
        let bound = tokens::upper_bound(req);
        let (t, m) = ask(bound);
        match self.reserve(key, t, m, cap, None) {
            Err(r)
                if matches!(
                    r.error,
                    GatewayError::BudgetExceeded { .. }
                        | GatewayError::RateLimited {
                            limit: Limit::Tokens,
                            ..
                        }
                ) =>
            {
                let counting_model = model
                    .deployments
                    .first()
                    .map_or("", |d| d.model_id.as_str());
                let exact = tokens::count_request(counting_model, req);
                let (t, m) = ask(exact);
                self.reserve(key, t, m, cap, Some(exact))
            }
            other => other,
        }
    }

    /// Takes a request, `tokens` and `micros` from the key's and its team's limits, all
    /// or nothing, under their locks.
    fn reserve(
        &self,
        key: &Arc<KeyEntry>,
        tokens: u64,
        micros: i64,
        allowance: Option<u32>,
        prompt: Option<u32>,
    ) -> Result<Admission, Box<Refusal>> {
        let needs_tokens = tokens > 0;
        let now = now_ms();
        let scopes: Vec<&Arc<Scope>> = key
            .team_scope
            .iter()
            .chain(std::iter::once(&key.scope))
            .collect();
        // Team before key, always: one order, so two requests never wait on each other.
        let mut guards: Vec<_> = scopes.iter().map(|s| s.lock()).collect();
        let mut headers = RateHeaders::default();
        let mut refusal = None;
        for (scope, st) in scopes.iter().zip(guards.iter_mut()) {
            let st = &mut **st;
            let checks = [
                (Limit::Requests, st.rpm.as_mut(), 1.0),
                (Limit::Tokens, st.tpm.as_mut(), tokens as f64),
            ];
            for (limit, bucket, n) in checks {
                let Some(b) = bucket else { continue };
                match b.wait_for(n, now) {
                    Some(0) => {}
                    wait => {
                        refusal.get_or_insert(GatewayError::RateLimited {
                            limit,
                            scope: scope.kind.as_str(),
                            name: scope.name.clone(),
                            limit_value: u64::from(b.limit()),
                            wait_ms: wait,
                        });
                    }
                }
            }
            if let Some(a) = &mut st.budget
                && !a.fits(micros, now)
            {
                refusal.get_or_insert(GatewayError::BudgetExceeded {
                    scope: scope.kind.as_str(),
                    name: scope.name.clone(),
                    period: a.budget.period.as_str(),
                });
            }
        }
        if refusal.is_none() {
            for st in guards.iter_mut() {
                if let Some(b) = &mut st.rpm {
                    b.take(1.0);
                }
                if let Some(b) = &mut st.tpm {
                    b.take(tokens as f64);
                }
                if let Some(a) = &mut st.budget {
                    a.reserve(micros);
                }
            }
        }
        for st in guards.iter_mut() {
            headers.requests =
                RateHeaders::tighter(headers.requests, st.rpm.as_mut().map(|b| b.headroom(now)));
            headers.tokens =
                RateHeaders::tighter(headers.tokens, st.tpm.as_mut().map(|b| b.headroom(now)));
        }
        drop(guards);
        if let Some(error) = refusal {
            return Err(Box::new(Refusal { error, headers }));
        }
        Ok(Admission {
            key: key.clone(),
            prompt_tokens: prompt,
            reserved_tokens: if needs_tokens { tokens } else { 0 },
            reserved_micros: micros,
            output_allowance: allowance,
            headers,
            settled: false,
        })
    }
}
