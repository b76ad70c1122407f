//! The gateway config: `RawConfig` (what serde reads from TOML) → `Config` (validated).
//! Unknown keys are errors, and every error names its key.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    call_timeout: Option<String>,
    memory_limit: Option<String>,
    output_limit: Option<String>,
    max_instances: Option<u32>,
    max_memory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    call_timeout: Option<String>,
    memory_limit: Option<String>,
    output_limit: Option<String>,
    config: Option<toml::Table>,
}

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

        let mut defaults = Limits::default();
        let s = &raw.sandbox;
        if let Some(v) = &s.call_timeout {
            defaults.call_timeout = duration("sandbox.call_timeout", v)?;
        }
        if let Some(v) = &s.memory_limit {
            defaults.memory_bytes = size("sandbox.memory_limit", v)?;
        }
        if let Some(v) = &s.output_limit {
            defaults.output_bytes = size("sandbox.output_limit", v)?;
        }
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
        if defaults.memory_bytes > sandbox.max_memory_bytes {
            return Err(invalid(
                "sandbox.memory_limit",
                "is larger than sandbox.max_memory",
            ));
        }

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
        })
    }
}

fn plugin_settings(
    key: &str,
    raw: RawPlugin,
    defaults: &Limits,
    sandbox: &SandboxSettings,
) -> Result<PluginSettings, ConfigError> {
    let mut limits = defaults.clone();
    let mut changed = false;
    if let Some(v) = &raw.call_timeout {
        limits.call_timeout = duration(&format!("{key}.call_timeout"), v)?;
        changed = true;
    }
    if let Some(v) = &raw.memory_limit {
        limits.memory_bytes = size(&format!("{key}.memory_limit"), v)?;
        if limits.memory_bytes > sandbox.max_memory_bytes {
            return Err(invalid(
                format!("{key}.memory_limit"),
                "is larger than sandbox.max_memory",
            ));
        }
        changed = true;
    }
    if let Some(v) = &raw.output_limit {
        limits.output_bytes = size(&format!("{key}.output_limit"), v)?;
        changed = true;
    }
    let config_json = raw
        .config
        .map(|t| serde_json::to_string(&t))
        .transpose()
        .map_err(|e| invalid(format!("{key}.config"), e.to_string()))?;
    Ok(PluginSettings {
        limits: changed.then_some(limits),
        config_json,
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

/// The plugin names referenced by per-plugin tables, for `check`.
pub fn configured_plugins(cfg: &Config) -> BTreeMap<String, bool> {
    cfg.policy
        .per_plugin
        .keys()
        .map(|k| {
            (
                k.clone(),
                cfg.plugins_dir.join(format!("{k}.wasm")).exists(),
            )
        })
        .collect()
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
    }
}
