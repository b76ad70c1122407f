//! The command line: `serve`, `check`, `plugin inspect`.

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
    /// `mock-malformed`, `mock-tool-call`, `mock-words-100`, `mock-echo-key` (combine
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
    if cfg.client_keys.is_empty() && !cfg.listen.ip().is_loopback() {
        problems.push(format!(
            "server.listen: {} is not a loopback address, so client keys are required: set [auth] keys = [\"env:NAME\"]",
            cfg.listen
        ));
    }
    if !cfg.client_keys.is_empty() && cfg.admin_keys.is_empty() {
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
