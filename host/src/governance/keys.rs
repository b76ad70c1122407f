//! Client keys: generation, the keyed hash that is all the gateway stores, the `keys`
//! table that `switchyard keys` edits, and the in-memory table requests look keys up in.
//!
//! Why HMAC-SHA256 and not a password hash (argon2, bcrypt): a key is 256 random bits,
//! not a password a person chose, so there is nothing for a slow hash to protect
//! against (no dictionary, no brute force). A slow hash would cost tens of milliseconds
//! of CPU on every request for no gain. The hash is *keyed* (the hash key lives outside
//! the database) so that a copy of the database alone cannot even confirm a key, and
//! lookup by hash needs no constant-time comparison: timing can reveal something about
//! a hash, never about the secret.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Sha256;

use crate::config::{Access, Budget, BudgetPeriod, Config, Secret};

use super::GovernanceError;
use super::budget::Account;
use super::limits::Bucket;

/// What every generated secret starts with, so that secret scanners can find leaks.
pub const SECRET_PREFIX: &str = "sy-";

/// Generates a new secret: `sy-` and 256 random bits in hex.
pub fn generate_secret() -> Result<String, GovernanceError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| GovernanceError::Random(e.to_string()))?;
    Ok(format!("{SECRET_PREFIX}{}", hex::encode(bytes)))
}

/// The keyed hash of secrets.
#[derive(Clone)]
pub struct Hasher {
    /// Keyed once; cloned per hash so each hash skips the key schedule.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher(***)")
    }
}

/// Where the hash key is kept when the config does not supply one.
pub fn hash_key_path(state_path: &Path) -> PathBuf {
    let mut p = state_path.as_os_str().to_owned();
    p.push(".hashkey");
    PathBuf::from(p)
}

impl Hasher {
    pub fn new(key: &[u8]) -> Hasher {
        // HMAC takes keys of any length.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        Hasher { mac }
    }

    /// The configured hash key, or the one beside the database (created, mode 0600, on
    /// first use).
    pub fn load(configured: Option<&Secret>, state_path: &Path) -> Result<Hasher, GovernanceError> {
        if let Some(k) = configured {
            return Ok(Hasher::new(k.expose().as_bytes()));
        }
        let path = hash_key_path(state_path);
        let io = |e: std::io::Error| GovernanceError::HashKey {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = hex::decode(text.trim()).map_err(|e| GovernanceError::HashKey {
                    path: path.display().to_string(),
                    reason: format!("not hex: {e}"),
                })?;
                if key.len() < 32 {
                    return Err(GovernanceError::HashKey {
                        path: path.display().to_string(),
                        reason: "shorter than 32 bytes".into(),
                    });
                }
                Ok(Hasher::new(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| GovernanceError::Random(e.to_string()))?;
                write_private(&path, hex::encode(key).as_bytes()).map_err(io)?;
                // Another process may have won the race to create it: use what is there.
                Hasher::load(None, state_path)
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn hash(&self, secret: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Creates `path` readable by its owner only; fails if it exists.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => f.write_all(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A key as the `keys` table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub name: String,
    pub hash: [u8; 32],
    /// The first characters of the secret, to tell keys apart in a list.
    pub prefix: String,
    pub team: Option<String>,
    pub access: Access,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// What `keys create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    pub team: Option<String>,
    pub access: Access,
    pub expires_at: Option<i64>,
}

fn bump_version(tx: &Connection) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (k, v) VALUES ('keys_version', 1)
         ON CONFLICT(k) DO UPDATE SET v = v + 1",
        [],
    )?;
    Ok(())
}

fn audit(tx: &Connection, action: &str, subject: &str, detail: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (ts_ms, actor, action, subject, detail) VALUES (?1, 'cli', ?2, ?3, ?4)",
        params![crate::state::now_ms(), action, subject, detail],
    )?;
    Ok(())
}

/// The counter `keys create` and `keys revoke` bump; a gateway reloads its table when
/// it moves.
pub fn version(conn: &Connection) -> Result<i64, GovernanceError> {
    Ok(conn
        .query_row("SELECT v FROM meta WHERE k = 'keys_version'", [], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .unwrap_or(0))
}

/// Stores a new key and returns its secret (the only time it exists outside the
/// client). A revoked key's name may be reused; an active one's may not.
pub fn create(
    conn: &mut Connection,
    hasher: &Hasher,
    k: &NewKey,
) -> Result<String, GovernanceError> {
    let secret = generate_secret()?;
    let hash = hasher.hash(&secret);
    let prefix: String = secret.chars().take(SECRET_PREFIX.len() + 6).collect();
    let budget = k.access.budget;
    let tx = conn.transaction()?;
    let active: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM keys WHERE name = ?1 AND revoked_at IS NULL",
            [&k.name],
            |r| r.get(0),
        )
        .optional()?;
    if active.is_some() {
        return Err(GovernanceError::KeyExists(k.name.clone()));
    }
    tx.execute("DELETE FROM keys WHERE name = ?1", [&k.name])?;
    tx.execute(
        "INSERT INTO keys (name, hash, prefix, team, models, rpm, tpm, budget_micros, budget_period, expires_at, created_at, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            k.name,
            &hash[..],
            prefix,
            k.team,
            serde_json::to_string(&k.access.models).unwrap_or_else(|_| "[]".into()),
            k.access.rpm,
            k.access.tpm,
            budget.map(|b| b.limit_micros),
            budget.map(|b| b.period.as_str()),
            k.expires_at,
            crate::state::now_ms() / 1000,
            serde_json::to_string(&k.access.tags).unwrap_or_else(|_| "[]".into()),
        ],
    )?;
    bump_version(&tx)?;
    audit(
        &tx,
        "key.create",
        &k.name,
        &format!("team={}", k.team.as_deref().unwrap_or("")),
    )?;
    tx.commit()?;
    Ok(secret)
}

/// Revokes a key; false if there is no active key of that name.
pub fn revoke(conn: &mut Connection, name: &str) -> Result<bool, GovernanceError> {
    let tx = conn.transaction()?;
    let n = tx.execute(
        "UPDATE keys SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        params![name, crate::state::now_ms() / 1000],
    )?;
    if n > 0 {
        bump_version(&tx)?;
        audit(&tx, "key.revoke", name, "")?;
    }
    tx.commit()?;
    Ok(n > 0)
}

/// Every stored key, revoked ones included, by name.
pub fn list(conn: &Connection) -> Result<Vec<StoredKey>, GovernanceError> {
    let mut stmt = conn.prepare(
        "SELECT name, hash, prefix, team, models, rpm, tpm, budget_micros, budget_period, expires_at, created_at, revoked_at, tags
         FROM keys ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        let hash: Vec<u8> = r.get(1)?;
        let models: String = r.get(4)?;
        let budget_micros: Option<i64> = r.get(7)?;
        let period: Option<String> = r.get(8)?;
        let tags: String = r.get(12)?;
        Ok(StoredKey {
            name: r.get(0)?,
            hash: hash.try_into().unwrap_or([0; 32]),
            prefix: r.get(2)?,
            team: r.get(3)?,
            access: Access {
                models: serde_json::from_str(&models).unwrap_or_default(),
                rpm: r.get(5)?,
                tpm: r.get(6)?,
                budget: budget_micros.map(|limit_micros| Budget {
                    limit_micros,
                    period: period
                        .as_deref()
                        .and_then(BudgetPeriod::parse)
                        .unwrap_or(BudgetPeriod::Month),
                }),
                tags: serde_json::from_str(&tags).unwrap_or_default(),
            },
            expires_at: r.get(9)?,
            created_at: r.get(10)?,
            revoked_at: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// One key or team's live limits: its rate-limit buckets and budget account, behind
/// a lock of its own (never a global one). Kept across table rebuilds by name, so a
/// reload or a new key elsewhere resets no one's limits.
#[derive(Debug)]
pub struct Scope {
    /// `key NAME` or `team NAME`, for messages.
    pub kind: ScopeKind,
    pub name: String,
    pub state: Mutex<ScopeState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    Key,
    Team,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Key => "key",
            ScopeKind::Team => "team",
        }
    }
}

#[derive(Debug, Default)]
pub struct ScopeState {
    pub rpm: Option<Bucket>,
    pub tpm: Option<Bucket>,
    pub budget: Option<Account>,
}

impl Scope {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ScopeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Brings the limits in line with `access`, keeping what is already counted.
    fn configure(&self, access: &Access, spent_since: &dyn Fn(i64) -> i64, now_ms: i64) {
        let mut s = self.lock();
        let bucket = |old: Option<Bucket>, limit: Option<u32>| match (old, limit) {
            (Some(b), Some(l)) if b.limit() == l => Some(b),
            (_, Some(l)) => Some(Bucket::per_minute(l, now_ms)),
            (_, None) => None,
        };
        s.rpm = bucket(s.rpm.take(), access.rpm);
        s.tpm = bucket(s.tpm.take(), access.tpm);
        s.budget = match (s.budget.take(), access.budget) {
            (Some(mut a), Some(b)) if a.budget.period == b.period => {
                a.budget = b;
                Some(a)
            }
            (_, Some(b)) => {
                let start = super::budget::period_start(b.period, now_ms);
                Some(Account::new(b, spent_since(start), now_ms))
            }
            (_, None) => None,
        };
    }
}

/// A key a request may present.
#[derive(Debug)]
pub struct KeyEntry {
    pub name: String,
    pub team: Option<String>,
    pub access: Access,
    pub expires_at: Option<i64>,
    pub scope: Arc<Scope>,
    /// The team's access and limits, if the key has a team.
    pub team_access: Option<Access>,
    pub team_scope: Option<Arc<Scope>>,
    /// The key's tags and then its team's, each once: the caller's tags.
    pub tags: Vec<String>,
}

/// Every key, by hash. Rebuilt (and swapped whole) when the config or the `keys` table
/// changes.
#[derive(Debug, Default)]
pub struct KeyTable {
    by_hash: HashMap<[u8; 32], Arc<KeyEntry>>,
    /// Whether any key was ever declared or created (revoked ones count): revoking
    /// the last key must not reopen the gateway to anonymous callers.
    closed: bool,
    key_scopes: HashMap<String, Arc<Scope>>,
    team_scopes: HashMap<String, Arc<Scope>>,
}

/// Reads a scope's settled spend since a time from the ledger (for budgets created now).
pub type SpendLookup<'a> = &'a dyn Fn(ScopeKind, &str, i64) -> i64;

impl KeyTable {
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Whether callers need a key (see `closed`).
    pub fn closed(&self) -> bool {
        self.closed
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Arc<KeyEntry>> {
        self.by_hash.values()
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<&Arc<KeyEntry>> {
        self.by_hash.get(hash)
    }

    pub fn team_scope(&self, name: &str) -> Option<&Arc<Scope>> {
        self.team_scopes.get(name)
    }

    pub fn key_scope(&self, name: &str) -> Option<&Arc<Scope>> {
        self.key_scopes.get(name)
    }

    /// Builds the table from the config's keys (and its legacy `[auth] keys`, named
    /// `auth-key-N`) and the stored ones; a config key wins over a stored key of the same
    /// name. Scopes of `previous` are kept by name.
    pub fn build(
        cfg: &Config,
        stored: &[StoredKey],
        hasher: &Hasher,
        previous: Option<&KeyTable>,
        spend: SpendLookup<'_>,
        now_ms: i64,
    ) -> KeyTable {
        let mut t = KeyTable {
            closed: !cfg.client_keys.is_empty() || !cfg.keys.is_empty() || !stored.is_empty(),
            ..KeyTable::default()
        };
        let scope = |kind: ScopeKind, name: &str, access: &Access, prev: Option<&Arc<Scope>>| {
            let s = prev.cloned().unwrap_or_else(|| {
                Arc::new(Scope {
                    kind,
                    name: name.to_owned(),
                    state: Mutex::new(ScopeState::default()),
                })
            });
            s.configure(access, &|since| spend(kind, name, since), now_ms);
            s
        };
        for (name, access) in &cfg.teams {
            let prev = previous.and_then(|p| p.team_scopes.get(name));
            t.team_scopes
                .insert(name.clone(), scope(ScopeKind::Team, name, access, prev));
        }
        let add = |t: &mut KeyTable,
                   name: &str,
                   hash: [u8; 32],
                   team: Option<&String>,
                   access: &Access,
                   expires_at: Option<i64>| {
            if t.key_scopes.contains_key(name) {
                tracing::warn!(
                    key = name,
                    "a stored key has the name of a config key; the config key wins"
                );
                return;
            }
            let prev = previous.and_then(|p| p.key_scopes.get(name));
            let key_scope = scope(ScopeKind::Key, name, access, prev);
            t.key_scopes.insert(name.to_owned(), key_scope.clone());
            let team_scope = team.and_then(|n| t.team_scopes.get(n).cloned());
            if let Some(n) = team
                && team_scope.is_none()
            {
                tracing::warn!(key = name, team = %n, "the key's team is not in the config; only the key's own limits apply");
            }
            let team_access = team.and_then(|n| cfg.teams.get(n)).cloned();
            let mut tags = access.tags.clone();
            for tag in team_access.iter().flat_map(|a| &a.tags) {
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
            t.by_hash.insert(
                hash,
                Arc::new(KeyEntry {
                    name: name.to_owned(),
                    team: team.cloned(),
                    access: access.clone(),
                    expires_at,
                    scope: key_scope,
                    team_access,
                    team_scope,
                    tags,
                }),
            );
        };
        for (i, k) in cfg.client_keys.iter().enumerate() {
            add(
                &mut t,
                &format!("auth-key-{i}"),
                hasher.hash(k.expose()),
                None,
                &Access::default(),
                None,
            );
        }
        for (name, k) in &cfg.keys {
            add(
                &mut t,
                name,
                hasher.hash(k.secret.expose()),
                k.team.as_ref(),
                &k.access,
                k.expires_at,
            );
        }
        for k in stored.iter().filter(|k| k.revoked_at.is_none()) {
            add(
                &mut t,
                &k.name,
                k.hash,
                k.team.as_ref(),
                &k.access,
                k.expires_at,
            );
        }
        t
    }
}
