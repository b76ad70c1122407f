//! The composition root: builds the sandbox, loader, registry, upstream client and server
//! from a validated config, loads the plugins, and wires the watchers that apply plugin
//! and config changes (`reload`). The CLI and the tests start a gateway through here.

pub mod reload;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::live::Live;
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
        let loader = Arc::new(Loader::new(sandbox, cache, cfg.policy.clone()));
        let registry = Arc::new(Registry::new());
        let (listener, addr) = server::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let client = crate::upstream::Client::new().context("cannot build the TLS client")?;
        let live = Live::new(Arc::new(cfg.clone()), None);
        if cfg.client_keys.is_empty() {
            if !cfg.listen.ip().is_loopback() {
                anyhow::bail!(
                    "refusing to listen on {} without client keys: set [auth] keys = [\"env:NAME\"] or listen on a loopback address",
                    cfg.listen
                );
            }
            tracing::warn!(
                "no client keys configured ([auth] keys): serving without authentication on loopback only"
            );
        }
        for d in cfg.deployments.values() {
            if let Some(why) = d.unavailable() {
                tracing::warn!(deployment = %d.name, reason = %why, "deployment unavailable");
            }
        }
        let state = AppState::new(registry.clone(), live, client);
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
        Ok(Gateway {
            addr,
            state,
            registry,
            loader,
            server,
            shutdown,
            watch,
            config_watch,
        })
    }
}
