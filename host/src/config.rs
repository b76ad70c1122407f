//! The gateway config: `RawConfig` (what serde reads from TOML) → `Config` (validated).
//! Unknown keys are errors, and every error names its key.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::plugins::PluginName;
use crate::plugins::loader::{PluginPolicy, PluginSettings};
use crate::sandbox::{Limits, SandboxSettings};

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The plugins folder unless the config names one.
pub const DEFAULT_PLUGINS_DIR: &str = "plugins";
/// Quiet time after the last change to a plugin file before it is loaded.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);

/// A config error, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    /// Folder settings plus one `[plugins.NAME]` table per plugin; split by hand because
    /// serde cannot combine `flatten` with `deny_unknown_fields`.
    #[serde(default)]
    plugins: toml::Table,
    #[serde(default)]
    sandbox: RawSandbox,
    #[serde(default)]
    deployments: BTreeMap<String, RawDeployment>,
    #[serde(default)]
    models: BTreeMap<String, RawModel>,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    keys: BTreeMap<String, RawKey>,
    #[serde(default)]
    teams: BTreeMap<String, RawTeam>,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    ledger: RawLedger,
}

/// `[keys.NAME]`: a client key declared in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    /// `env:NAME` or `file:PATH`, never the key itself.
    secret: String,
    team: Option<String>,
    models: Option<Vec<String>>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    /// USD.
    budget: Option<f64>,
    budget_period: Option<String>,
    /// `2027-01-01` (UTC midnight) or an RFC 3339 time.
    expires: Option<String>,
    tags: Option<Vec<String>>,
}

/// `[teams.NAME]`: limits shared by every key of the team.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    models: Option<Vec<String>>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    budget: Option<f64>,
    budget_period: Option<String>,
    tags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    /// The SQLite file holding keys and the usage ledger.
    path: Option<String>,
    /// The key of the key hash (`env:NAME` or `file:PATH`); by default a random one kept
    /// in `<path>.hashkey` beside the database, so that a copy of the database alone
    /// cannot be used to test guessed keys.
    hash_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLedger {
    store_payloads: Option<bool>,
    payload_retention: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    adapter: String,
    base_url: String,
    /// The provider's model id.
    model: String,
    api_key: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// USD per million input tokens.
    input_price: Option<f64>,
    /// USD per million output tokens.
    output_price: Option<f64>,
    weight: Option<u32>,
    /// The most output tokens a request may produce here, when it does not say; what a
    /// budget reserves for such a request.
    max_output_tokens: Option<u32>,
    first_byte_timeout: Option<String>,
    idle_timeout: Option<String>,
    total_timeout: Option<String>,
    /// Adapter settings, handed to the adapter as JSON.
    settings: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    deployments: Vec<String>,
    router: Option<String>,
    #[serde(default)]
    filters: Vec<String>,
    /// What a failing filter does: `closed` (deny, the default) or `open` (skip it).
    filter_failure: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    admin_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
}

/// Per-plugin limits, as `[sandbox]` (defaults) and `[plugins.NAME]` (overrides) spell
/// them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    call_timeout: Option<String>,
    memory_limit: Option<String>,
    output_limit: Option<String>,
}

impl RawLimits {
    /// Applies the limits that are set over `limits`, naming keys under `section`;
    /// says whether any was set.
    fn apply(
        &self,
        section: &str,
        limits: &mut Limits,
        max_memory: usize,
    ) -> Result<bool, ConfigError> {
        if let Some(v) = &self.call_timeout {
            limits.call_timeout = duration(&format!("{section}.call_timeout"), v)?;
        }
        if let Some(v) = &self.memory_limit {
            limits.memory_bytes = size(&format!("{section}.memory_limit"), v)?;
        }
        if limits.memory_bytes > max_memory {
            return Err(invalid(
                format!("{section}.memory_limit"),
                "is larger than sandbox.max_memory",
            ));
        }
        if let Some(v) = &self.output_limit {
            limits.output_bytes = size(&format!("{section}.output_limit"), v)?;
        }
        Ok(self.call_timeout.is_some()
            || self.memory_limit.is_some()
            || self.output_limit.is_some())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    #[serde(flatten)]
    limits: RawLimits,
    max_instances: Option<u32>,
    max_memory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    #[serde(flatten)]
    limits: RawLimits,
    config: Option<toml::Table>,
    /// `fresh` (the default) or `warm`.
    instances: Option<String>,
    /// Warm mode: idle instances kept.
    pool_size: Option<u32>,
    /// Warm mode: requests per instance.
    max_uses: Option<u32>,
    /// Warm mode: discard an instance whose memory grew past this.
    recycle_memory: Option<String>,
}

/// Warm mode's defaults: enough idle instances for a few cores' worth of concurrent
/// requests, a bound on how long any state a plugin keeps can live, and room to grow.
const WARM_POOL_SIZE: u32 = 8;
const WARM_MAX_USES: u32 = 1000;

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub plugins_dir: PathBuf,
    /// Compiled-plugin cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    pub debounce: Duration,
    pub sandbox: SandboxSettings,
    pub policy: PluginPolicy,
    pub deployments: BTreeMap<String, Arc<Deployment>>,
    pub models: BTreeMap<String, Arc<Model>>,
    /// Client API keys; empty means no authentication (loopback only).
    pub client_keys: Vec<Secret>,
    /// Keys that may use `/admin/*` (`[auth] admin_keys`).
    pub admin_keys: Vec<Secret>,
    /// `[keys.NAME]`.
    pub keys: BTreeMap<String, KeyConfig>,
    /// `[teams.NAME]`.
    pub teams: BTreeMap<String, Access>,
    /// The SQLite file with keys and the ledger (`[state] path`).
    pub state_path: PathBuf,
    /// `[state] hash_key`, when set.
    pub hash_key: Option<Secret>,
    pub ledger: LedgerConfig,
}

/// What a key or a team may use, and how much.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Access {
    /// Public models it may call; empty means all.
    pub models: Vec<String>,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub budget: Option<Budget>,
    /// Labels the caller carries into filters and routers (`caller.tags`), e.g.
    /// `confidential` for the `residency` filter.
    pub tags: Vec<String>,
}

impl Access {
    pub fn allows(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model || m == "*")
    }
}

/// A spending limit in integer micro-dollars per calendar period (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit_micros: i64,
    pub period: BudgetPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    Day,
    Month,
    Total,
}

impl BudgetPeriod {
    pub fn parse(s: &str) -> Option<BudgetPeriod> {
        match s {
            "day" | "daily" => Some(BudgetPeriod::Day),
            "month" | "monthly" => Some(BudgetPeriod::Month),
            "total" => Some(BudgetPeriod::Total),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Day => "day",
            BudgetPeriod::Month => "month",
            BudgetPeriod::Total => "total",
        }
    }
}

/// A client key declared in the config (`[keys.NAME]`).
#[derive(Debug, Clone)]
pub struct KeyConfig {
    pub secret: Secret,
    pub team: Option<String>,
    pub access: Access,
    /// Unix seconds.
    pub expires_at: Option<i64>,
}

/// `[ledger]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerConfig {
    /// Keep prompt and completion text (in their own table) for replays.
    pub store_payloads: bool,
    pub payload_retention: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            store_payloads: false,
            payload_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Turns USD into integer micro-dollars, refusing what is not a non-negative amount.
pub fn usd_to_micros(usd: f64) -> Option<i64> {
    (0.0..1e12)
        .contains(&usd)
        .then(|| (usd * 1e6).round() as i64)
}

/// Parses an expiry: `2027-01-01` (UTC midnight) or an RFC 3339 time; unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

/// Validates the access fields shared by keys and teams, naming keys under `section`.
/// The access fields `[keys.*]` and `[teams.*]` share, as written.
struct RawAccess {
    models: Option<Vec<String>>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    budget: Option<f64>,
    period: Option<String>,
    tags: Option<Vec<String>>,
}

fn access(
    section: &str,
    raw: RawAccess,
    known_models: &BTreeMap<String, Arc<Model>>,
) -> Result<Access, ConfigError> {
    let RawAccess {
        models,
        rpm,
        tpm,
        budget,
        period,
        tags,
    } = raw;
    let models = models.unwrap_or_default();
    let tags = tags.unwrap_or_default();
    if let Some(bad) = tags.iter().find(|t| !valid_tag(t)) {
        return Err(invalid(
            format!("{section}.tags"),
            format!("`{bad}` is not a tag: {TAG_RULE}"),
        ));
    }
    for m in &models {
        if m != "*" && !known_models.contains_key(m) {
            return Err(invalid(
                format!("{section}.models"),
                format!("unknown model \"{m}\""),
            ));
        }
    }
    for (field, v) in [("rpm", rpm), ("tpm", tpm)] {
        if v == Some(0) {
            return Err(invalid(format!("{section}.{field}"), "must be at least 1"));
        }
    }
    let period = match period.as_deref() {
        None => BudgetPeriod::Month,
        Some(p) => BudgetPeriod::parse(p).ok_or_else(|| {
            invalid(
                format!("{section}.budget_period"),
                format!("`{p}` is not `day`, `month` or `total`"),
            )
        })?,
    };
    let budget = budget
        .map(|usd| {
            usd_to_micros(usd)
                .map(|limit_micros| Budget {
                    limit_micros,
                    period,
                })
                .ok_or_else(|| {
                    invalid(
                        format!("{section}.budget"),
                        "must be a non-negative amount of USD",
                    )
                })
        })
        .transpose()?;
    Ok(Access {
        models,
        rpm,
        tpm,
        budget,
        tags,
    })
}

/// What a caller's tag may look like, in words for error messages.
pub const TAG_RULE: &str = "1 to 64 letters, digits, `-`, `_`, `.` or `:`";

/// Whether `tag` follows [`TAG_RULE`]: tags travel into plugins and logs, so they stay
/// plain.
pub fn valid_tag(tag: &str) -> bool {
    (1..=64).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A secret read from the environment. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(std::sync::Arc<str>);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret as a shared string, for scrubbing it from upstream answers without a
    /// copy per request.
    pub fn shared(&self) -> std::sync::Arc<str> {
        self.0.clone()
    }

    #[doc(hidden)]
    pub fn for_tests(s: &str) -> Secret {
        Secret(s.into())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Timeouts for calls to one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Until the response head arrives, connecting included (connecting alone is also
    /// capped by `upstream::CONNECT_TIMEOUT`).
    pub first_byte: Duration,
    /// Between two body reads.
    pub idle: Duration,
    /// The whole call, streaming included.
    pub total: Duration,
}

impl Timeouts {
    /// How long a stream may wait for its next body frame: the first-byte or idle
    /// timeout, whichever applies, but never past the call's total.
    pub fn next_wait(&self, started: std::time::Instant, first: bool) -> Duration {
        let per_read = if first { self.first_byte } else { self.idle };
        per_read.min(self.total.saturating_sub(started.elapsed()))
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(600),
        }
    }
}

/// One provider deployment: where to send requests and how.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub name: String,
    pub adapter: String,
    /// Without a trailing slash.
    pub base_url: String,
    /// `base_url` parsed once, for the per-request origin check.
    pub base_uri: hyper::Uri,
    pub model_id: String,
    /// `None` when no key is configured; `Some(Err(what))` when the variable or file is missing
    /// (the deployment is then unavailable, not fatal).
    pub api_key: Option<Result<Secret, String>>,
    pub tags: Vec<String>,
    pub input_price: f64,
    pub output_price: f64,
    pub weight: u32,
    pub max_output_tokens: Option<u32>,
    pub timeouts: Timeouts,
    /// Adapter settings as JSON text.
    pub settings_json: String,
}

impl Deployment {
    /// Why the deployment cannot be used right now, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        match &self.api_key {
            Some(Err(what)) => Some(format!("{what} is not set or empty")),
            _ => None,
        }
    }
}

/// What a failing compliance filter does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterFailure {
    /// Deny the request (a broken filter must not let traffic through unfiltered).
    Closed,
    /// Skip the filter.
    Open,
}

/// A public model: what clients ask for.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub deployments: Vec<Arc<Deployment>>,
    pub router: Option<String>,
    pub filters: Vec<String>,
    pub filter_failure: FilterFailure,
}

impl Config {
    /// Reads and validates a config file. Relative paths in it are relative to the
    /// file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses config text; `base` resolves relative paths.
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<config>".into(),
            message: e.to_string(),
        })?;
        let listen = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen.parse().map_err(|e| {
            invalid(
                "server.listen",
                format!("`{listen}` is not an address: {e}"),
            )
        })?;

        let s = &raw.sandbox;
        let mut sandbox = SandboxSettings::default();
        if let Some(n) = s.max_instances {
            if n == 0 {
                return Err(invalid("sandbox.max_instances", "must be at least 1"));
            }
            sandbox.max_instances = n;
        }
        if let Some(v) = &s.max_memory {
            sandbox.max_memory_bytes = size("sandbox.max_memory", v)?;
        }
        let mut defaults = Limits::default();
        s.limits
            .apply("sandbox", &mut defaults, sandbox.max_memory_bytes)?;

        let mut plugins_dir = PathBuf::from(DEFAULT_PLUGINS_DIR);
        let mut cache_dir = None;
        let mut cache_set = false;
        let mut debounce = DEFAULT_DEBOUNCE;
        let mut per_plugin = HashMap::new();
        for (key, value) in &raw.plugins {
            let path = format!("plugins.{key}");
            match key.as_str() {
                "dir" => plugins_dir = PathBuf::from(string(&path, value)?),
                "cache_dir" => {
                    cache_set = true;
                    let v = string(&path, value)?;
                    cache_dir = (!v.is_empty()).then(|| PathBuf::from(v));
                }
                "debounce" => debounce = duration(&path, string(&path, value)?)?,
                name => {
                    if PluginName::parse(name).is_none() {
                        return Err(invalid(
                            path,
                            "unknown key (plugin names are lowercase letters, digits and dashes)",
                        ));
                    }
                    let raw: RawPlugin = value
                        .clone()
                        .try_into()
                        .map_err(|e: toml::de::Error| invalid(&path, e.message().to_owned()))?;
                    per_plugin.insert(
                        name.to_owned(),
                        plugin_settings(&path, raw, &defaults, &sandbox)?,
                    );
                }
            }
        }
        // Idle warm instances hold pool slots: leave at least half of them for requests.
        let idle: u64 = per_plugin
            .values()
            .filter_map(|p: &PluginSettings| p.warm.as_ref())
            .map(|w| u64::from(w.pool_size))
            .sum();
        if idle > u64::from(sandbox.max_instances / 2) {
            return Err(invalid(
                "plugins",
                format!(
                    "warm pools keep {idle} idle instances, more than half of sandbox.max_instances ({}); lower pool_size",
                    sandbox.max_instances
                ),
            ));
        }
        let plugins_dir = base.join(plugins_dir);
        // By default the cache sits beside the plugins folder, not inside it: the folder
        // is writable by whoever drops plugins in, the cache must not be.
        let cache_dir = if cache_set {
            cache_dir.map(|d| base.join(d))
        } else {
            let name = plugins_dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("plugins");
            Some(plugins_dir.with_file_name(format!(".{name}-cache")))
        };
        let deployments = raw
            .deployments
            .into_iter()
            .map(|(name, d)| deployment(&name, d).map(|d| (name, Arc::new(d))))
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let mut models = BTreeMap::new();
        for (name, m) in raw.models {
            models.insert(name.clone(), Arc::new(model(&name, m, &deployments)?));
        }
        let keys = |field: &str, list: &[String]| {
            list.iter()
                .enumerate()
                .map(|(i, k)| {
                    let key = format!("auth.{field}[{i}]");
                    secret(&key, k)?
                        .map_err(|what| invalid(key, format!("{what} is not set or empty")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let client_keys = keys("keys", &raw.auth.keys)?;
        let admin_keys = keys("admin_keys", &raw.auth.admin_keys)?;
        let mut teams = BTreeMap::new();
        for (name, t) in raw.teams {
            let section = format!("teams.{name}");
            if !valid_key_name(&name) {
                return Err(invalid(&section, KEY_NAME_RULE));
            }
            teams.insert(
                name,
                access(
                    &section,
                    RawAccess {
                        models: t.models,
                        rpm: t.rpm,
                        tpm: t.tpm,
                        budget: t.budget,
                        period: t.budget_period,
                        tags: t.tags,
                    },
                    &models,
                )?,
            );
        }
        let mut keys = BTreeMap::new();
        for (name, k) in raw.keys {
            let section = format!("keys.{name}");
            if !valid_key_name(&name) {
                return Err(invalid(&section, KEY_NAME_RULE));
            }
            let secret = secret(&format!("{section}.secret"), &k.secret)?.map_err(|what| {
                invalid(
                    format!("{section}.secret"),
                    format!("{what} is not set or empty"),
                )
            })?;
            if let Some(t) = &k.team
                && !teams.contains_key(t)
            {
                return Err(invalid(
                    format!("{section}.team"),
                    format!("unknown team \"{t}\" (declare it as [teams.{t}])"),
                ));
            }
            let expires_at = k
                .expires
                .as_deref()
                .map(|e| {
                    parse_time(e).ok_or_else(|| {
                        invalid(
                            format!("{section}.expires"),
                            format!("`{e}` is not a date like 2027-01-01 or an RFC 3339 time"),
                        )
                    })
                })
                .transpose()?;
            let access = access(
                &section,
                RawAccess {
                    models: k.models,
                    rpm: k.rpm,
                    tpm: k.tpm,
                    budget: k.budget,
                    period: k.budget_period,
                    tags: k.tags,
                },
                &models,
            )?;
            keys.insert(
                name,
                KeyConfig {
                    secret,
                    team: k.team,
                    access,
                    expires_at,
                },
            );
        }
        let all_client = client_keys
            .iter()
            .chain(keys.values().map(|k| &k.secret))
            .collect::<Vec<_>>();
        if admin_keys.iter().any(|k| all_client.contains(&k)) {
            return Err(invalid(
                "auth.admin_keys",
                "an admin key must not also be a client key",
            ));
        }
        for (i, a) in all_client.iter().enumerate() {
            if all_client[..i].contains(a) {
                return Err(invalid("keys", "two client keys have the same secret"));
            }
        }
        let state_path = base.join(raw.state.path.as_deref().unwrap_or("switchyard.db"));
        let hash_key = raw
            .state
            .hash_key
            .as_deref()
            .map(|v| {
                secret("state.hash_key", v)?.map_err(|what| {
                    invalid("state.hash_key", format!("{what} is not set or empty"))
                })
            })
            .transpose()?;
        let mut ledger = LedgerConfig::default();
        if let Some(b) = raw.ledger.store_payloads {
            ledger.store_payloads = b;
        }
        if let Some(r) = &raw.ledger.payload_retention {
            ledger.payload_retention = duration("ledger.payload_retention", r)?;
        }
        Ok(Config {
            listen,
            plugins_dir,
            cache_dir,
            debounce,
            sandbox,
            policy: PluginPolicy {
                defaults,
                per_plugin,
            },
            deployments,
            models,
            client_keys,
            admin_keys,
            keys,
            teams,
            state_path,
            hash_key,
            ledger,
        })
    }
}

/// What key and team names may be: they appear in logs, reports and metrics.
pub const KEY_NAME_RULE: &str =
    "names are 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit";

pub fn valid_key_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Resolves a secret reference: `env:NAME` (an environment variable) or `file:PATH`
/// (the trimmed contents of a file, as Docker and Kubernetes secrets are mounted).
/// `Ok(Err(what))` when the variable is unset or the file unreadable.
fn secret(key: &str, v: &str) -> Result<Result<Secret, String>, ConfigError> {
    if let Some(path) = v.strip_prefix("file:") {
        if path.is_empty() {
            return Err(invalid(key, "empty file path"));
        }
        return Ok(match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => Ok(Secret(s.trim().into())),
            _ => Err(format!("file {path}")),
        });
    }
    let var = v.strip_prefix("env:").ok_or_else(|| {
        invalid(key, "secrets are referenced as \"env:NAME\" or \"file:PATH\" so that they never sit in the config file")
    })?;
    if var.is_empty() {
        return Err(invalid(key, "empty environment variable name"));
    }
    Ok(match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Secret(v.into())),
        _ => Err(format!("environment variable {var}")),
    })
}

fn deployment(name: &str, d: RawDeployment) -> Result<Deployment, ConfigError> {
    let key = format!("deployments.{name}");
    if PluginName::parse(&d.adapter).is_none() {
        return Err(invalid(
            format!("{key}.adapter"),
            format!("`{}` is not a plugin name", d.adapter),
        ));
    }
    let base_url = d.base_url.trim_end_matches('/').to_owned();
    let uri: hyper::Uri = base_url
        .parse()
        .map_err(|e| invalid(format!("{key}.base_url"), format!("`{}`: {e}", d.base_url)))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(invalid(
            format!("{key}.base_url"),
            "must be an absolute http:// or https:// URL",
        ));
    }
    if uri.query().is_some() {
        return Err(invalid(
            format!("{key}.base_url"),
            "must not carry a query string",
        ));
    }
    let mut timeouts = Timeouts::default();
    for (field, value, slot) in [
        (
            "first_byte_timeout",
            &d.first_byte_timeout,
            &mut timeouts.first_byte,
        ),
        ("idle_timeout", &d.idle_timeout, &mut timeouts.idle),
        ("total_timeout", &d.total_timeout, &mut timeouts.total),
    ] {
        if let Some(v) = value {
            *slot = duration(&format!("{key}.{field}"), v)?;
        }
    }
    let price = |field: &str, v: Option<f64>| match v {
        Some(p) if !(p.is_finite() && p >= 0.0) => Err(invalid(
            format!("{key}.{field}"),
            "must be a non-negative number",
        )),
        Some(p) => Ok(p),
        None => Ok(0.0),
    };
    let settings_json = d
        .settings
        .map(|t| serde_json::to_string(&t))
        .transpose()
        .map_err(|e| invalid(format!("{key}.settings"), e.to_string()))?
        .unwrap_or_else(|| "{}".into());
    Ok(Deployment {
        name: name.to_owned(),
        adapter: d.adapter,
        base_url,
        base_uri: uri,
        model_id: d.model,
        api_key: d
            .api_key
            .as_deref()
            .map(|k| secret(&format!("{key}.api_key"), k))
            .transpose()?,
        tags: d.tags,
        input_price: price("input_price", d.input_price)?,
        output_price: price("output_price", d.output_price)?,
        max_output_tokens: match d.max_output_tokens {
            Some(0) => {
                return Err(invalid(
                    format!("{key}.max_output_tokens"),
                    "must be at least 1",
                ));
            }
            other => other,
        },
        weight: match d.weight {
            Some(0) => return Err(invalid(format!("{key}.weight"), "must be at least 1")),
            Some(w) => w,
            None => 1,
        },
        timeouts,
        settings_json,
    })
}

fn model(
    name: &str,
    m: RawModel,
    deployments: &BTreeMap<String, Arc<Deployment>>,
) -> Result<Model, ConfigError> {
    let key = format!("models.{name}");
    if m.deployments.is_empty() {
        return Err(invalid(
            format!("{key}.deployments"),
            "a model needs at least one deployment",
        ));
    }
    let resolved = m
        .deployments
        .iter()
        .map(|d| {
            deployments.get(d).cloned().ok_or_else(|| {
                invalid(
                    format!("{key}.deployments"),
                    format!("unknown deployment \"{d}\""),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for p in m.router.iter().chain(&m.filters) {
        if PluginName::parse(p).is_none() {
            return Err(invalid(&key, format!("`{p}` is not a plugin name")));
        }
    }
    let filter_failure = match m.filter_failure.as_deref() {
        None | Some("closed") => FilterFailure::Closed,
        Some("open") => FilterFailure::Open,
        Some(other) => {
            return Err(invalid(
                format!("{key}.filter_failure"),
                format!("`{other}` is not `closed` or `open`"),
            ));
        }
    };
    Ok(Model {
        name: name.to_owned(),
        deployments: resolved,
        router: m.router,
        filters: m.filters,
        filter_failure,
    })
}

fn plugin_settings(
    key: &str,
    raw: RawPlugin,
    defaults: &Limits,
    sandbox: &SandboxSettings,
) -> Result<PluginSettings, ConfigError> {
    let mut limits = defaults.clone();
    let changed = raw
        .limits
        .apply(key, &mut limits, sandbox.max_memory_bytes)?;
    let config_json = raw
        .config
        .map(|t| serde_json::to_string(&t))
        .transpose()
        .map_err(|e| invalid(format!("{key}.config"), e.to_string()))?;
    let warm = match raw.instances.as_deref() {
        None | Some("fresh") => {
            for (set, name) in [
                (raw.pool_size.is_some(), "pool_size"),
                (raw.max_uses.is_some(), "max_uses"),
                (raw.recycle_memory.is_some(), "recycle_memory"),
            ] {
                if set {
                    return Err(invalid(
                        format!("{key}.{name}"),
                        "applies only with instances = \"warm\"",
                    ));
                }
            }
            None
        }
        Some("warm") => {
            let positive = |name: &str, v: Option<u32>, default: u32| match v {
                Some(0) => Err(invalid(format!("{key}.{name}"), "must be at least 1")),
                v => Ok(v.unwrap_or(default)),
            };
            let recycle_memory_bytes = match &raw.recycle_memory {
                Some(v) => size(&format!("{key}.recycle_memory"), v)?,
                None => limits.memory_bytes / 4 * 3,
            };
            if recycle_memory_bytes > limits.memory_bytes {
                return Err(invalid(
                    format!("{key}.recycle_memory"),
                    "is larger than the plugin's memory_limit",
                ));
            }
            Some(crate::sandbox::Warm {
                pool_size: positive("pool_size", raw.pool_size, WARM_POOL_SIZE)?,
                max_uses: positive("max_uses", raw.max_uses, WARM_MAX_USES)?,
                recycle_memory_bytes,
            })
        }
        Some(other) => {
            return Err(invalid(
                format!("{key}.instances"),
                format!("`{other}` is not \"fresh\" or \"warm\""),
            ));
        }
    };
    Ok(PluginSettings {
        limits: changed.then_some(limits),
        config_json,
        warm,
    })
}

fn string<'a>(key: &str, v: &'a toml::Value) -> Result<&'a str, ConfigError> {
    v.as_str().ok_or_else(|| invalid(key, "expected a string"))
}

fn duration(key: &str, v: &str) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(v)
        .map_err(|e| invalid(key, format!("`{v}` is not a duration like \"250ms\": {e}")))?;
    if d.is_zero() {
        return Err(invalid(key, "must be greater than zero"));
    }
    Ok(d)
}

fn size(key: &str, v: &str) -> Result<usize, ConfigError> {
    let b: bytesize::ByteSize = v
        .parse()
        .map_err(|e| invalid(key, format!("`{v}` is not a size like \"64MiB\": {e}")))?;
    usize::try_from(b.as_u64())
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(key, "must be greater than zero"))
}

impl Config {
    /// Every plugin the config refers to, with the config key that refers to it and the
    /// kind it must be (`None` for per-plugin tables, which fit any kind); for `check`.
    pub fn referenced_plugins(&self) -> Vec<(String, String, Option<crate::plugins::PluginKind>)> {
        use crate::plugins::PluginKind;
        let mut out: Vec<(String, String, Option<PluginKind>)> = self
            .policy
            .per_plugin
            .keys()
            .map(|k| (format!("plugins.{k}"), k.clone(), None))
            .collect();
        for d in self.deployments.values() {
            out.push((
                format!("deployments.{}.adapter", d.name),
                d.adapter.clone(),
                Some(PluginKind::Adapter),
            ));
        }
        for m in self.models.values() {
            if let Some(r) = &m.router {
                out.push((
                    format!("models.{}.router", m.name),
                    r.clone(),
                    Some(PluginKind::Router),
                ));
            }
            for f in &m.filters {
                out.push((
                    format!("models.{}.filters", m.name),
                    f.clone(),
                    Some(PluginKind::Filter),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("/etc/sy"))
    }

    #[test]
    fn empty_config_takes_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.plugins_dir, Path::new("/etc/sy/plugins"));
        assert_eq!(
            c.cache_dir.as_deref(),
            Some(Path::new("/etc/sy/.plugins-cache"))
        );
        assert_eq!(c.policy.defaults, Limits::default());
    }

    #[test]
    fn per_plugin_tables_override_limits_and_carry_config() {
        let c = parse(
            r#"
            [sandbox]
            call_timeout = "50ms"
            [plugins]
            dir = "p"
            [plugins.pii-redact]
            memory_limit = "8MiB"
            config = { mask = "[x]", n = 3 }
            "#,
        )
        .unwrap();
        let p = &c.policy.per_plugin["pii-redact"];
        let l = p.limits.as_ref().unwrap();
        assert_eq!(l.memory_bytes, 8 << 20);
        assert_eq!(l.call_timeout, Duration::from_millis(50));
        let cfg: serde_json::Value =
            serde_json::from_str(p.config_json.as_deref().unwrap()).unwrap();
        assert_eq!(cfg["mask"], "[x]");
    }

    #[test]
    fn warm_mode_is_opt_in_with_bounded_pools() {
        let c = parse(
            r#"
            [plugins.secrets-filter]
            instances = "warm"
            memory_limit = "48MiB"
            [plugins.tiered-router]
            instances = "warm"
            pool_size = 2
            max_uses = 50
            recycle_memory = "20MiB"
            [plugins.pii-redact]
            instances = "fresh"
            "#,
        )
        .unwrap();
        let w = c.policy.per_plugin["secrets-filter"].warm.clone().unwrap();
        assert_eq!(
            (w.pool_size, w.max_uses, w.recycle_memory_bytes),
            (8, 1000, 36 << 20),
            "defaults; the mark is 3/4 of the memory limit"
        );
        let w = c.policy.per_plugin["tiered-router"].warm.clone().unwrap();
        assert_eq!(
            (w.pool_size, w.max_uses, w.recycle_memory_bytes),
            (2, 50, 20 << 20)
        );
        assert!(c.policy.per_plugin["pii-redact"].warm.is_none());

        for (toml, key) in [
            ("[plugins.a]\ninstances = \"hot\"", "plugins.a.instances"),
            ("[plugins.a]\npool_size = 2", "plugins.a.pool_size"),
            (
                "[plugins.a]\ninstances = \"warm\"\nmax_uses = 0",
                "plugins.a.max_uses",
            ),
            (
                "[plugins.a]\ninstances = \"warm\"\nrecycle_memory = \"1GiB\"",
                "plugins.a.recycle_memory",
            ),
            (
                "[sandbox]\nmax_instances = 10\n[plugins.a]\ninstances = \"warm\"\npool_size = 6",
                "plugins",
            ),
        ] {
            let e = parse(toml).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{key}:")), "{toml} -> {e}");
        }
    }

    #[test]
    fn deployments_and_models_resolve_with_env_keys() {
        let c = parse(
            r#"
            [deployments.a]
            adapter = "openai"
            base_url = "http://127.0.0.1:9090/v1/"
            model = "mock-echo"
            api_key = "env:SWITCHYARD_TEST_UNSET_KEY_FOR_CONFIG"
            tags = ["on-prem"]
            input_price = 0.5
            first_byte_timeout = "2s"
            [models.demo]
            deployments = ["a"]
            filters = ["pii-redact"]
            "#,
        )
        .unwrap();
        let d = &c.deployments["a"];
        assert_eq!(d.base_url, "http://127.0.0.1:9090/v1");
        assert_eq!(d.timeouts.first_byte, Duration::from_secs(2));
        assert!(
            d.unavailable()
                .is_some_and(|r| r.contains("SWITCHYARD_TEST_UNSET_KEY_FOR_CONFIG"))
        );
        assert_eq!(c.models["demo"].deployments[0].name, "a");
        assert_eq!(c.models["demo"].filter_failure, FilterFailure::Closed);
    }

    #[test]
    fn deployment_and_model_errors_name_the_key() {
        let base =
            "[deployments.a]\nadapter = \"openai\"\nbase_url = \"http://x\"\nmodel = \"m\"\n";
        let e = parse(&format!("{base}[models.demo]\ndeployments = [\"b\"]"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "models.demo.deployments: unknown deployment \"b\"");
        let e = parse(&format!("{base}api_key = \"sk-literal\""))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("deployments.a.api_key:"), "{e}");
        let e =
            parse("[deployments.a]\nadapter = \"openai\"\nbase_url = \"ftp://x\"\nmodel = \"m\"")
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("deployments.a.base_url:"), "{e}");
        let e = parse(&format!("{base}colour = 1")).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret::for_tests("sk-123")), "***");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("[sandbox]\ncall_timeout = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("sandbox.call_timeout:"), "{e}");
        let e = parse("[plugins.Bad_Name]\n").unwrap_err().to_string();
        assert!(e.starts_with("plugins.Bad_Name:"), "{e}");
        let e = parse("[plugins.ok]\nmemory = \"1MiB\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("plugins.ok:") && e.contains("memory"), "{e}");
        let e = parse("[server]\nlisten = \"nope\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("server.listen:"), "{e}");
        let e = parse("[serverr]\n").unwrap_err().to_string();
        assert!(e.contains("serverr"), "{e}");
        // Typos in the limit tables, which share their limit keys.
        let e = parse("[sandbox]\ncall_timeot = \"1s\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("call_timeot"), "{e}");
        let e = parse("[plugins.ok]\ncall_timeot = \"1s\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("call_timeot"), "{e}");
        let e = parse("[sandbox]\nmemory_limit = \"2GiB\"\nmax_memory = \"1GiB\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("sandbox.memory_limit:"), "{e}");
        let e = parse("[plugins.ok]\nmemory_limit = \"2GiB\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("plugins.ok.memory_limit:"), "{e}");
        let e = parse("[teams.t]\ntags = [\"on prem\"]")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("teams.t.tags: `on prem` is not a tag"), "{e}");
        let c = parse("[teams.t]\ntags = [\"eu\", \"tier:gold\"]").unwrap();
        assert_eq!(c.teams["t"].tags, ["eu", "tier:gold"]);
    }
}
