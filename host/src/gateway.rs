//! The composition root: builds the sandbox, loader, registry, upstream client and server
//! from a validated config, loads the plugins, and wires the watchers that apply plugin
//! and config changes (`reload`). The CLI and the tests start a gateway through here.

pub mod reload;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::governance::Governance;
use crate::ledger::{Ledger, LedgerSettings};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::plugins::cache::ArtifactCache;
use crate::plugins::{Loader, Registry, watcher};
use crate::sandbox::Sandbox;
use crate::server::{self, AppState};

/// A running gateway (used by `serve` and by tests).
pub struct Gateway {
    pub addr: std::net::SocketAddr,
    pub state: Arc<AppState>,
    pub registry: Arc<Registry>,
    pub loader: Arc<Loader>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Send `true` to stop accepting and drain (see `server::serve`).
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub watch: watcher::WatchHandle,
    pub config_watch: Option<reload::ConfigWatch>,
    /// Applies `switchyard keys create`/`revoke` to the running gateway; stops with it.
    pub key_poller: KeyPoller,
}

/// How often a running gateway looks for keys created or revoked by the CLI.
pub const KEY_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// The key poller's task, stopped when dropped.
pub struct KeyPoller(tokio::task::JoinHandle<()>);

impl Drop for KeyPoller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls the `keys` table's version (one indexed read) and rebuilds the key table when
/// the CLI changed it. Polling, not a file watch: SQLite writes land in the WAL file,
/// and a version number says exactly whether the keys changed.
fn poll_keys(state: Arc<AppState>) -> KeyPoller {
    KeyPoller(tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEY_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let state = state.clone();
            let polled = tokio::task::spawn_blocking(move || {
                let cfg = state.live.load().config.clone();
                state.governance.poll(&cfg)
            })
            .await;
            match polled {
                Ok(Ok(true)) => tracing::info!("keys changed; key table reloaded"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the keys table"),
                Err(e) => tracing::warn!(error = %e, "key poller failed"),
            }
        }
    }))
}

impl Gateway {
    /// Binds, loads every plugin, starts the watchers and the server; ready on return.
    /// With `config_path`, edits of that file are applied without a restart.
    pub async fn start(cfg: Config, config_path: Option<&Path>) -> anyhow::Result<Gateway> {
        let sandbox = Sandbox::new(cfg.sandbox.clone())
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .context("cannot build the sandbox")?;
        let cache = cfg
            .cache_dir
            .as_ref()
            .map(|d| ArtifactCache::open(d, &cfg.plugins_dir))
            .transpose()?;
        let metrics = Arc::new(Metrics::new());
        let loader =
            Arc::new(Loader::new(sandbox, cache, cfg.policy.clone()).with_metrics(metrics.clone()));
        let registry = Arc::new(Registry::new());
        let (listener, addr) = server::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let client = crate::upstream::Client::new().context("cannot build the TLS client")?;
        let live = Live::new(Arc::new(cfg.clone()), None, &metrics);
        let ledger = Arc::new(
            Ledger::open(LedgerSettings {
                store_payloads: cfg.ledger.store_payloads,
                payload_retention: cfg.ledger.payload_retention,
                ..LedgerSettings::new(&cfg.state_path)
            })
            .with_context(|| {
                format!(
                    "cannot open the state database {}",
                    cfg.state_path.display()
                )
            })?,
        );
        let governance = Arc::new(Governance::open(&cfg).context("cannot load the keys")?);
        if !governance.required() {
            if !cfg.listen.ip().is_loopback() {
                anyhow::bail!(
                    "refusing to listen on {} without client keys: add [keys.NAME] secret = \"env:VAR\" (or `switchyard keys create NAME`), or listen on a loopback address",
                    cfg.listen
                );
            }
            tracing::warn!(
                "no client keys ([keys.NAME] or `switchyard keys create`): serving without authentication on loopback only"
            );
        }
        for d in cfg.deployments.values() {
            if let Some(why) = d.unavailable() {
                tracing::warn!(deployment = %d.name, reason = %why, "deployment unavailable");
            }
        }
        let state = AppState::new(registry.clone(), live, client, governance, ledger, metrics);
        let (shutdown, stop) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(server::serve(listener, state.clone(), stop));
        std::fs::create_dir_all(&cfg.plugins_dir).with_context(|| {
            format!(
                "cannot create the plugins folder {}",
                cfg.plugins_dir.display()
            )
        })?;
        // Watch before the initial scan so that a file dropped in during the scan is seen.
        let watch = watcher::watch(
            &cfg.plugins_dir,
            loader.clone(),
            registry.clone(),
            cfg.debounce,
        )
        .with_context(|| format!("cannot watch {}", cfg.plugins_dir.display()))?;
        watcher::load_all(&cfg.plugins_dir, &loader, &registry)
            .await
            .with_context(|| {
                format!(
                    "cannot read the plugins folder {}",
                    cfg.plugins_dir.display()
                )
            })?;
        state.set_started();
        let n = registry.snapshot().len();
        tracing::info!(plugins = n, dir = %cfg.plugins_dir.display(), "plugins loaded");
        let config_watch = match config_path {
            Some(p) => Some(
                reload::watch(
                    p,
                    state.clone(),
                    loader.clone(),
                    registry.clone(),
                    cfg.debounce,
                )
                .with_context(|| format!("cannot watch {}", p.display()))?,
            ),
            None => None,
        };
        let key_poller = poll_keys(state.clone());
        Ok(Gateway {
            addr,
            state,
            registry,
            loader,
            server,
            shutdown,
            watch,
            config_watch,
            key_poller,
        })
    }
}
