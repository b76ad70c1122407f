//! The command line: `serve`, `check`, `plugin inspect|build`, `keys`, `usage`.

mod plugin;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::gateway::Gateway;
use crate::plugins::inspect::inspect;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "An AI gateway whose every moving part is a WebAssembly plugin"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, default_value = "switchyard.toml")]
        config: PathBuf,
        /// Overrides `server.listen`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Overrides `plugins.dir`.
        #[arg(long)]
        plugins: Option<PathBuf>,
    },
    /// Validate a config and the plugins it refers to without starting; exit 2 if invalid.
    Check {
        #[arg(long, default_value = "switchyard.toml")]
        config: PathBuf,
    },
    /// Serve the OpenAI, Anthropic and Gemini wire formats locally, for trying the
    /// gateway without provider keys. The model name picks the behaviour: `mock-echo`,
    /// `mock-status-429`, `mock-slow-500ms`, `mock-ttft-200ms`, `mock-gap-100ms`, `mock-stream-cut-3`,
    /// `mock-malformed`, `mock-tool-call`, `mock-words-100`, `mock-echo-key`, `mock-no-usage` (combine
    /// with `+`). A development tool: builds without the `mock-upstream` feature lack it.
    #[cfg(feature = "mock-upstream")]
    MockUpstream {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: std::net::SocketAddr,
    },
    /// Work with plugin files.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Create, list and revoke client keys (kept, hashed, in the state database; a
    /// running gateway applies a change within a second).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Report usage from the ledger.
    Usage {
        #[arg(long, default_value = "switchyard.toml")]
        config: PathBuf,
        /// `24h`, `7d`, `2026-11-01` or an RFC 3339 time.
        #[arg(long, default_value = "24h")]
        since: String,
        /// key, team, model, deployment or day.
        #[arg(long, default_value = "key")]
        by: String,
        /// table, json or csv.
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print its secret (shown only this once).
    Create {
        name: String,
        #[arg(long, default_value = "switchyard.toml")]
        config: PathBuf,
        /// A team declared as [teams.NAME] in the config.
        #[arg(long)]
        team: Option<String>,
        /// Public models the key may use, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u32>,
        /// Tokens per minute.
        #[arg(long)]
        tpm: Option<u32>,
        /// Budget in USD.
        #[arg(long)]
        budget: Option<f64>,
        /// day, month or total.
        #[arg(long, default_value = "month")]
        budget_period: String,
        /// A lifetime (`30d`, `12h`) or a date (`2027-01-01`) or an RFC 3339 time.
        #[arg(long)]
        expires: Option<String>,
        /// Tags the caller carries into filters and routers (e.g. `confidential` for
        /// `residency`), comma-separated.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long, default_value = "switchyard.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key; a running gateway refuses it within a second.
    Revoke {
        name: String,
        #[arg(long, default_value = "switchyard.toml")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Show a plugin's kind, WIT version, imports, exports, size and sha256.
    Inspect {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a new adapter, router or filter project in Rust, Python or JavaScript, with
    /// tests.
    New {
        name: String,
        /// rust, python or js.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// adapter, router or filter.
        #[arg(long)]
        kind: String,
        /// The folder to create the project in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// A local checkout's `sdk/` for Rust projects (default: the git repository).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin project (Rust, Python or JavaScript) into OUT/NAME.wasm and check
    /// that it loads in this host.
    Build {
        /// The project: a Rust crate (Cargo.toml) or a folder with switchyard-plugin.toml.
        dir: PathBuf,
        /// Where NAME.wasm goes (a gateway's plugins folder picks it up at once).
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve {
            config,
            listen,
            plugins,
        } => exit(run_serve(&config, listen, plugins)),
        Command::Check { config } => check(&config),
        #[cfg(feature = "mock-upstream")]
        Command::MockUpstream { listen } => exit(run_mock(listen)),
        Command::Plugin {
            command: PluginCommand::Inspect { file, json },
        } => inspect_cmd(&file, json),
        Command::Plugin {
            command: PluginCommand::Build { dir, out },
        } => exit(plugin::build(&dir, &out)),
        Command::Plugin {
            command:
                PluginCommand::New {
                    name,
                    lang,
                    kind,
                    dir,
                    sdk,
                },
        } => exit(plugin::new(&name, &lang, &kind, &dir, sdk.as_deref())),
        Command::Keys { command } => exit(keys_cmd(command)),
        Command::Usage {
            config,
            since,
            by,
            format,
        } => exit(usage_cmd(&config, &since, &by, &format)),
    }
}

fn exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a collector gets plain `key=value` text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

fn run_serve(
    config: &Path,
    listen: Option<std::net::SocketAddr>,
    plugins: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut cfg = Config::load(config).context("invalid config")?;
    if let Some(l) = listen {
        cfg.listen = l;
    }
    if let Some(p) = plugins {
        cfg.plugins_dir = p;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(serve(cfg, config))
}

#[cfg(feature = "mock-upstream")]
fn run_mock(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(addr = %listen, "mock upstream listening (OpenAI, Anthropic, Gemini)");
        tokio::select! {
            r = switchyard_mock_upstream::serve(listener) => r.context("mock upstream failed"),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

/// Starts the gateway with a validated config: loads plugins, watches the folder, serves.
pub async fn serve(cfg: Config, config_path: &Path) -> anyhow::Result<()> {
    let started = Gateway::start(cfg, Some(config_path)).await?;
    tracing::info!(addr = %started.addr, "switchyard listening");
    let mut server = started.server;
    tokio::select! {
        r = &mut server => return r.context("server task failed")?.context("server failed"),
        _ = termination() => {}
    }
    // Readiness fails at once so load balancers stop sending; in-flight requests and
    // streams get `server::SHUTDOWN_GRACE` to finish.
    tracing::info!("shutting down: finishing in-flight requests");
    started.state.ready.store(false, Ordering::Release);
    let _ = started.shutdown.send(true);
    server
        .await
        .context("server task failed")?
        .context("server failed")?;
    // Every row of every finished request is on disk before the process exits.
    started.state.ledger.close();
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (how Kubernetes and systemd stop a service) or Ctrl-C.
async fn termination() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the gateway");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Validates the config and every plugin it refers to (present, a valid plugin, of the
/// right kind); exit 2 with one message per problem, each naming its key.
fn check(config: &Path) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            return ExitCode::from(2);
        }
    };
    let mut problems = Vec::new();
    for (key, name, kind) in cfg.referenced_plugins() {
        let path = cfg.plugins_dir.join(format!("{name}.wasm"));
        let found = std::fs::read(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|b| inspect(&b).map_err(|e| format!("{}: {e}", path.display())))
            .and_then(|i| {
                i.plugin_kind()
                    .map_err(|e| format!("{}: {e}", path.display()))
            });
        match (found, kind) {
            (Err(e), _) => problems.push(format!("{key}: plugin `{name}`: {e}")),
            (Ok((actual, _)), Some(wanted)) if actual != wanted => problems.push(format!(
                "{key}: plugin `{name}` is a {actual}, not a {wanted}"
            )),
            _ => {}
        }
    }
    if let Some(dir) = &cfg.cache_dir
        && let Err(e) = crate::plugins::cache::ArtifactCache::open(dir, &cfg.plugins_dir)
    {
        problems.push(format!("plugins.cache_dir: {e}"));
    }
    let stored_keys = crate::state::open(&cfg.state_path)
        .ok()
        .and_then(|c| crate::governance::keys::list(&c).ok())
        .map_or(0, |k| k.iter().filter(|k| k.revoked_at.is_none()).count());
    let any_keys = !cfg.client_keys.is_empty() || !cfg.keys.is_empty() || stored_keys > 0;
    if !any_keys && !cfg.listen.ip().is_loopback() {
        problems.push(format!(
            "server.listen: {} is not a loopback address, so client keys are required: add [keys.NAME] secret = \"env:VAR\" or run `switchyard keys create NAME`",
            cfg.listen
        ));
    }
    if !cfg.client_keys.is_empty() {
        println!(
            "warning: auth.keys still works but is deprecated: name each key instead, [keys.NAME] secret = \"env:VAR\" (with optional team, models, rpm, tpm, budget)"
        );
    }
    if any_keys && cfg.admin_keys.is_empty() {
        println!(
            "warning: auth.admin_keys is empty, so /admin/* answers no one; add [auth] admin_keys = [\"env:NAME\"] to use it"
        );
    }
    for d in cfg.deployments.values() {
        if let Some(why) = d.unavailable() {
            println!(
                "warning: deployments.{}.api_key: {why}; the deployment will be unavailable",
                d.name
            );
        }
    }
    problems.sort();
    problems.dedup();
    for p in &problems {
        eprintln!("{p}");
    }
    if problems.is_empty() {
        println!("{}: ok", config.display());
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn inspect_cmd(file: &Path, as_json: bool) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let info = match inspect(&bytes) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let kind = info.plugin_kind();
    if as_json {
        let v = serde_json::json!({
            "file": file.display().to_string(),
            "kind": kind.as_ref().ok().map(|k| k.0),
            "wit_version": kind.as_ref().ok().map(|k| k.1.clone()),
            "encoding": info.encoding,
            "size": info.size,
            "sha256": info.sha256,
            "imports": info.imports,
            "exports": info.exports,
            "error": kind.as_ref().err().map(|e| e.to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("file:        {}", file.display());
        match &kind {
            Ok((k, v)) => {
                println!("kind:        {k}");
                println!("wit version: {v}");
            }
            Err(_) => println!("kind:        (not a Switchyard plugin)"),
        }
        println!("encoding:    {}", info.encoding);
        println!("size:        {} bytes", info.size);
        println!("sha256:      {}", info.sha256);
        println!("exports:");
        for e in &info.exports {
            println!("  {e}");
        }
        println!("imports:");
        for i in &info.imports {
            println!("  {i}");
        }
    }
    match kind {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

/// Loads the config a keys or usage command works against (for the state database,
/// the hash key, and the teams and models a key may name).
fn load_config(config: &Path) -> anyhow::Result<Config> {
    Config::load(config).with_context(|| format!("invalid config {}", config.display()))
}

fn keys_cmd(command: KeysCommand) -> anyhow::Result<()> {
    use crate::governance::keys;
    match command {
        KeysCommand::Create {
            name,
            config,
            team,
            models,
            rpm,
            tpm,
            budget,
            budget_period,
            expires,
            tags,
            json,
        } => {
            let cfg = load_config(&config)?;
            let new = new_key(
                &cfg,
                name,
                team,
                models,
                rpm,
                tpm,
                budget,
                &budget_period,
                expires,
                tags,
            )?;
            let hasher = crate::governance::Hasher::load(cfg.hash_key.as_ref(), &cfg.state_path)?;
            let mut conn = crate::state::open(&cfg.state_path)?;
            let secret = keys::create(&mut conn, &hasher, &new)?;
            if json {
                let v = serde_json::json!({
                    "name": new.name,
                    "secret": secret,
                    "team": new.team,
                    "models": new.access.models,
                    "rpm": new.access.rpm,
                    "tpm": new.access.tpm,
                    "budget_usd": new.access.budget.map(|b| crate::ledger::report::usd(b.limit_micros)),
                    "budget_period": new.access.budget.map(|b| b.period.as_str()),
                    "expires_at": new.expires_at.map(rfc3339),
                    "tags": new.access.tags,
                });
                println!("{v}");
            } else {
                println!(
                    "Created key `{}`. Its secret, shown only this once:\n\n    {secret}\n",
                    new.name
                );
                println!(
                    "Send it as `Authorization: Bearer <secret>`; a running gateway accepts it within a second."
                );
            }
            Ok(())
        }
        KeysCommand::List { config, json } => {
            let cfg = load_config(&config)?;
            let conn = crate::state::open(&cfg.state_path)?;
            let stored = keys::list(&conn)?;
            let now = crate::state::now_ms() / 1000;
            let status = |revoked: Option<i64>, expires: Option<i64>| match (revoked, expires) {
                (Some(_), _) => "revoked",
                (None, Some(t)) if t <= now => "expired",
                _ => "active",
            };
            let mut rows: Vec<serde_json::Value> = cfg
                .keys
                .iter()
                .map(|(name, k)| {
                    key_json(
                        name,
                        "config",
                        None,
                        k.team.as_deref(),
                        &k.access,
                        k.expires_at,
                        None,
                        status(None, k.expires_at),
                    )
                })
                .collect();
            rows.extend(stored.iter().map(|k| {
                key_json(
                    &k.name,
                    "cli",
                    Some(&k.prefix),
                    k.team.as_deref(),
                    &k.access,
                    k.expires_at,
                    Some(k.created_at),
                    status(k.revoked_at, k.expires_at),
                )
            }));
            if json {
                println!("{}", serde_json::Value::Array(rows));
                return Ok(());
            }
            let s = |v: &serde_json::Value, f: &str| match &v[f] {
                serde_json::Value::Null => "-".to_owned(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) if a.is_empty() && f == "models" => "all".to_owned(),
                serde_json::Value::Array(a) if a.is_empty() => "-".to_owned(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let header = [
                "NAME", "SOURCE", "PREFIX", "TEAM", "MODELS", "RPM", "TPM", "BUDGET", "PERIOD",
                "TAGS", "EXPIRES", "STATUS",
            ];
            let fields = [
                "name",
                "source",
                "prefix",
                "team",
                "models",
                "rpm",
                "tpm",
                "budget_usd",
                "budget_period",
                "tags",
                "expires_at",
                "status",
            ];
            let table: Vec<Vec<String>> =
                std::iter::once(header.iter().map(|h| (*h).to_owned()).collect())
                    .chain(
                        rows.iter()
                            .map(|r| fields.iter().map(|f| s(r, f)).collect()),
                    )
                    .collect();
            let widths: Vec<usize> = (0..header.len())
                .map(|i| table.iter().map(|r| r[i].len()).max().unwrap_or(0))
                .collect();
            for r in &table {
                let line: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", line.join("  ").trim_end());
            }
            Ok(())
        }
        KeysCommand::Revoke { name, config } => {
            let cfg = load_config(&config)?;
            if cfg.keys.contains_key(&name) {
                anyhow::bail!(
                    "key `{name}` is declared in {}; remove its [keys.{name}] table there",
                    config.display()
                );
            }
            let mut conn = crate::state::open(&cfg.state_path)?;
            if !keys::revoke(&mut conn, &name)? {
                anyhow::bail!("no active key named `{name}`");
            }
            println!("Revoked key `{name}`; a running gateway refuses it within a second.");
            Ok(())
        }
    }
}

#[allow(clippy::too_many_arguments)] // One per column of the listing.
fn key_json(
    name: &str,
    source: &str,
    prefix: Option<&str>,
    team: Option<&str>,
    access: &crate::config::Access,
    expires_at: Option<i64>,
    created_at: Option<i64>,
    status: &str,
) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "source": source,
        "prefix": prefix,
        "team": team,
        "models": access.models,
        "rpm": access.rpm,
        "tpm": access.tpm,
        "budget_usd": access.budget.map(|b| crate::ledger::report::usd(b.limit_micros)),
        "budget_period": access.budget.map(|b| b.period.as_str()),
        "tags": access.tags,
        "expires_at": expires_at.map(rfc3339),
        "created_at": created_at.map(rfc3339),
        "status": status,
    })
}

fn rfc3339(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_s.to_string())
}

/// Validates `keys create`'s flags against the config, with messages naming the flag.
#[allow(clippy::too_many_arguments)] // One per flag.
fn new_key(
    cfg: &Config,
    name: String,
    team: Option<String>,
    models: Vec<String>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    budget: Option<f64>,
    budget_period: &str,
    expires: Option<String>,
    tags: Vec<String>,
) -> anyhow::Result<crate::governance::keys::NewKey> {
    use crate::config::{Access, Budget, BudgetPeriod};
    if !crate::config::valid_key_name(&name) {
        anyhow::bail!("key name `{name}`: {}", crate::config::KEY_NAME_RULE);
    }
    if cfg.keys.contains_key(&name) {
        anyhow::bail!("key `{name}` is already declared in the config ([keys.{name}])");
    }
    if let Some(t) = &team
        && !cfg.teams.contains_key(t)
    {
        anyhow::bail!("--team: unknown team `{t}` (declare it as [teams.{t}] in the config)");
    }
    for m in &models {
        if m != "*" && !cfg.models.contains_key(m) {
            anyhow::bail!("--models: unknown model `{m}`");
        }
    }
    if rpm == Some(0) || tpm == Some(0) {
        anyhow::bail!("--rpm and --tpm must be at least 1");
    }
    if let Some(bad) = tags.iter().find(|t| !crate::config::valid_tag(t)) {
        anyhow::bail!("--tags: `{bad}` is not a tag: {}", crate::config::TAG_RULE);
    }
    let period = BudgetPeriod::parse(budget_period).with_context(|| {
        format!("--budget-period: `{budget_period}` is not day, month or total")
    })?;
    let budget = budget
        .map(|usd| {
            crate::config::usd_to_micros(usd)
                .map(|limit_micros| Budget {
                    limit_micros,
                    period,
                })
                .context("--budget: must be a non-negative amount of USD")
        })
        .transpose()?;
    let expires_at = expires
        .map(|e| {
            crate::config::parse_time(&e)
                .or_else(|| {
                    humantime::parse_duration(&e)
                        .ok()
                        .map(|d| crate::state::now_ms() / 1000 + d.as_secs() as i64)
                })
                .with_context(|| {
                    format!("--expires: `{e}` is not a lifetime like 30d or a date like 2027-01-01")
                })
        })
        .transpose()?;
    Ok(crate::governance::keys::NewKey {
        name,
        team,
        access: Access {
            models,
            rpm,
            tpm,
            budget,
            tags,
        },
        expires_at,
    })
}

fn usage_cmd(config: &Path, since: &str, by: &str, format: &str) -> anyhow::Result<()> {
    use crate::ledger::report;
    let cfg = load_config(config)?;
    let by: report::GroupBy = by
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--by: {e}"))?;
    let since_ms = report::parse_since(since, crate::state::now_ms())
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let conn = crate::state::open(&cfg.state_path)?;
    let r = report::usage(&conn, since_ms, by)?;
    let text = match format {
        "table" => report::render_table(&r),
        "json" => report::render_json(&r),
        "csv" => report::render_csv(&r),
        other => anyhow::bail!("--format: `{other}` is not table, json or csv"),
    };
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(())
}
