//! What a plugin's `Store` holds: a WASI context with every capability denied, the
//! resource table, memory limits, captured output and the host imports' state.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::Limits;
use super::output::Captured;
use super::wit::latest::{Level, host_iface, types};

/// The longest log line a plugin may write through `host.log`.
const MAX_LOG_LINE: usize = 4096;
/// The most `host.log` lines one instance may write; the rest are dropped.
const MAX_LOG_LINES: u32 = 256;

/// What the host knows about the plugin an instance belongs to.
#[derive(Debug)]
pub(crate) struct PluginEnv {
    pub name: String,
    /// `[plugins.NAME.config]` as JSON text, handed out by `host.config`.
    pub config_json: String,
    pub limits: Limits,
    /// Call durations and faults, resolved once per plugin version.
    pub metrics: Option<crate::metrics::PluginMetrics>,
}

pub(crate) struct StoreData {
    /// Built on the guest's first WASI call: most plugin calls make none, and building
    /// a context (clocks, random sources, stdio) costs about a microsecond per instance.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    limits: StoreLimits,
    /// Set when a memory grow was refused, so the resulting trap is reported as "memory
    /// limit" rather than as a generic trap.
    pub(crate) memory_denied: bool,
    /// Bytes of linear memory the instance holds (every memory, as grown so far): what
    /// warm mode compares with its recycle mark.
    pub(crate) memory_in_use: usize,
    pub(crate) env: Arc<PluginEnv>,
    stdout: Captured,
    stderr: Captured,
    log_lines: u32,
    origin: Instant,
}

impl StoreData {
    pub(crate) fn new(env: Arc<PluginEnv>) -> Self {
        let stdout = Captured::new(env.limits.output_bytes);
        let stderr = Captured::new(env.limits.output_bytes);
        let mut table = ResourceTable::new();
        table.set_max_capacity(1024);
        let limits = StoreLimitsBuilder::new()
            .memory_size(env.limits.memory_bytes)
            .instances(64)
            .tables(64)
            .memories(8)
            .table_elements(100_000)
            // A trap names the cause; a failed grow would surface as an opaque abort.
            .trap_on_grow_failure(true)
            .build();
        StoreData {
            wasi: None,
            table,
            limits,
            memory_denied: false,
            memory_in_use: 0,
            env,
            stdout,
            stderr,
            log_lines: 0,
            origin: Instant::now(),
        }
    }

    /// Readies a warm instance for its next request: its output so far is logged and
    /// its per-request log budget starts again.
    pub(crate) fn end_request(&mut self) {
        self.flush_output();
        self.log_lines = 0;
    }

    /// Logs what the guest wrote to stdout/stderr under the plugin's name.
    pub(crate) fn flush_output(&self) {
        for (stream, captured) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let (bytes, dropped) = captured.take();
            if bytes.is_empty() && dropped == 0 {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines().filter(|l| !l.is_empty()) {
                let line = one_line(line);
                tracing::info!(target: "plugin", plugin = %self.env.name, stream, "{line}");
            }
            if dropped > 0 {
                tracing::warn!(target: "plugin", plugin = %self.env.name, stream, dropped, "plugin output over its limit was dropped");
            }
        }
    }
}

/// A plugin's text as one log line: control characters (a newline that would start a
/// forged log record, terminal escapes) are shown escaped, never interpreted.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl ResourceLimiter for StoreData {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let r = self.limits.memory_growing(current, desired, maximum);
        if matches!(r, Ok(true)) {
            self.memory_in_use = self
                .memory_in_use
                .saturating_add(desired.saturating_sub(current));
        } else {
            self.memory_denied = true;
        }
        r
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// Deny by default: the builder grants no preopens, no env, no args, and since wasmtime
/// 48 no TCP/UDP; name lookup is refused too. Only output is wired, to bounded buffers.
fn deny_all_wasi(stdout: &Captured, stderr: &Captured) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (stdout, stderr) = (&self.stdout, &self.stderr);
        WasiCtxView {
            ctx: self
                .wasi
                .get_or_insert_with(|| deny_all_wasi(stdout, stderr)),
            table: &mut self.table,
        }
    }
}

impl types::Host for StoreData {}

impl host_iface::Host for StoreData {
    fn log(&mut self, level: Level, message: String) {
        if self.log_lines >= MAX_LOG_LINES {
            return;
        }
        self.log_lines += 1;
        let mut msg = message;
        if msg.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
        }
        let msg = one_line(&msg);
        let name = &self.env.name;
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin = %name, "{msg}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin = %name, "{msg}"),
            Level::Info => tracing::info!(target: "plugin", plugin = %name, "{msg}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin = %name, "{msg}"),
            Level::Error => tracing::error!(target: "plugin", plugin = %name, "{msg}"),
        }
    }

    fn config(&mut self) -> String {
        self.env.config_json.clone()
    }

    fn monotonic_now(&mut self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn plugin_text_cannot_forge_log_lines() {
        assert_eq!(one_line("plain text"), "plain text");
        assert_eq!(
            one_line("ok\n2026-01-01 ERROR forged\r\x1b[31m"),
            "ok\\n2026-01-01 ERROR forged\\r\\u{1b}[31m"
        );
    }
}
