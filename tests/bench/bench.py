#!/usr/bin/env python3
"""Load harness: Switchyard beside LiteLLM and Portkey on one gateway core.

Run through `bash tests/bench/run.sh`, which installs and builds what this needs. Every
system under test is pinned to core 1; the load generator (oha, stream_load) and the
upstream (nginx) share core 0. Each system runs alone, after a discarded warm-up, and is
stopped (its whole process tree, by PID) before the next one starts. Standard library
only, so the harness has nothing to install for itself.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import hashlib
import http.client
import urllib.request
import shutil
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tests" / "bench"
WORK = ROOT / "target" / "bench"
SWITCHYARD = Path(os.environ.get("SWITCHYARD_BIN", ROOT / "target" / "release" / "switchyard"))
# An earlier build for a before/after figure in the same run (system `switchyard-before`:
# its full chain, with the config it understands: `[auth] keys`, no ledger or metrics).
SWITCHYARD_BEFORE = os.environ.get("SWITCHYARD_BEFORE_BIN")
STREAM_LOAD = ROOT / "target" / "release" / "examples" / "stream_load"
OHA = Path.home() / ".cargo" / "bin" / "oha"
PLUGINS = WORK / "plugins"

GATEWAY_CORE = "1"
LOAD_CORE = "0"
UPSTREAM_PORT = 18081
MOCK_PORT = 18082
GATEWAY_PORT = 18080
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# Clients send this key; Switchyard checks it, the others run without client auth.
CLIENT_KEY = "sk-bench-client"
UPSTREAM_KEY = "sk-bench-upstream"
# `/admin/*` needs an admin key once client keys are set; the reload figure reads it.
ADMIN_KEY = "sk-bench-admin"

SYSTEMS = ["direct", "nginx-proxy", "switchyard-before", "switchyard-full", "switchyard-governed",
           "switchyard-library", "switchyard-adapter", "litellm", "portkey"]


# ---------------------------------------------------------------------------------------
# Processes: started pinned, stopped by PID with their whole tree.


def descendants(pid):
    """Every live process whose ancestry reaches `pid`, `pid` included."""
    parent = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        parent[int(entry)] = int(fields[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        for child, ppid in parent.items():
            if ppid == p and child not in tree:
                tree.add(child)
                frontier.append(child)
    return [p for p in tree if Path(f"/proc/{p}").exists()]


def cpu_seconds(pid):
    """User + system CPU of the live process tree, in seconds."""
    total = 0
    for p in descendants(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_mib(pid):
    """Resident memory of the live process tree, in MiB."""
    total_kib = 0
    for p in descendants(pid):
        try:
            statm = Path(f"/proc/{p}/statm").read_text().split()
        except OSError:
            continue
        total_kib += int(statm[1]) * PAGE_KIB
    return total_kib / 1024


class Proc:
    """A background process pinned to `core`; `stop()` ends it and its children."""

    def __init__(self, name, cmd, core, env=None, cwd=None):
        self.name = name
        if cmd is None:
            self.popen, self.log, self.log_path, self.pid = None, None, None, None
            return
        WORK.mkdir(parents=True, exist_ok=True)
        self.log_path = WORK / f"{name}.log"
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ, **(env or {}))
        self.popen = subprocess.Popen(
            ["taskset", "-c", core, *cmd],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def alive(self):
        if self.popen is not None:
            return self.popen.poll() is None
        return Path(f"/proc/{self.pid}").exists() and not zombie(self.pid)

    def stop(self):
        tree = descendants(self.pid)
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            for p in tree:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.popen is not None:
                    self.popen.poll()
                tree = [p for p in tree if Path(f"/proc/{p}").exists() and not zombie(p)]
                if not tree:
                    break
                time.sleep(0.05)
            if not tree:
                break
        if self.popen is not None:
            self.popen.wait(timeout=5)
            self.log.close()

    def tail(self, n=30):
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def zombie(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


STARTED = []


def start(name, cmd, core, env=None, cwd=None):
    p = Proc(name, cmd, core, env, cwd)
    STARTED.append(p)
    return p


def adopt(name, pid):
    """A server some script started; we only hold its PID."""
    p = Proc(name, None, None)
    p.pid = pid
    STARTED.append(p)
    return p


def stop(p):
    if p in STARTED:
        STARTED.remove(p)
    p.stop()


def stop_all():
    while STARTED:
        stop(STARTED[-1])


# ---------------------------------------------------------------------------------------
# HTTP helpers (stdlib; used for readiness and the sequential overhead sample only).


def post(port, path, body, headers, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"content-type": "application/json", **headers})
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def wait_ready(proc, port, path, body, headers, timeout=120):
    """Polls with a real chat completion until it answers 200."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited during start-up:\n{proc.tail()}")
        try:
            status, body_out, _ = post(port, path, body, headers, timeout=5)
            if status == 200:
                return
            last = f"HTTP {status}: {body_out[:300]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.25)
    raise RuntimeError(f"{proc.name} not ready after {timeout}s ({last}):\n{proc.tail()}")


# ---------------------------------------------------------------------------------------
# The upstreams.


def nginx(name, core, listen_port, http_extra, locations):
    """An nginx in the foreground, one process (`master_process off`), logging nothing
    per request, keep-alive without limit, `TCP_NODELAY` on."""
    ngx = WORK / name
    ngx.mkdir(parents=True, exist_ok=True)
    conf = f"""
worker_processes 1;
daemon off;
master_process off;
error_log {ngx}/error.log warn;
pid {ngx}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {ngx}/body;
  proxy_temp_path {ngx}/proxy;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  tcp_nodelay on;
  {http_extra}
  server {{
    listen 127.0.0.1:{listen_port} backlog=4096;
    {locations}
  }}
}}
"""
    (ngx / "nginx.conf").write_text(conf)
    return start(name, ["nginx", "-p", str(ngx), "-c", str(ngx / "nginx.conf")], core)


def start_nginx():
    root = BENCH / "upstream"
    # `error_page 405 =200 $uri` turns the POST that nginx's static module refuses into
    # a GET of the same file, so a fixed body is served to POST with no module beyond
    # nginx-light; `return 200 "..."` cannot hold a body over nginx's 4 KiB token limit.
    p = nginx("nginx", LOAD_CORE, UPSTREAM_PORT, "etag off;", f"""
    location = /plain/v1/chat/completions {{
      default_type application/json; alias {root}/chat.json; error_page 405 =200 $uri;
    }}
    location = /stream/v1/chat/completions {{
      default_type text/event-stream; alias {root}/chat.sse; error_page 405 =200 $uri;
    }}
    location / {{ return 404; }}""")
    wait_ready(p, UPSTREAM_PORT, "/plain/v1/chat/completions", b"{}", {})
    return p


def start_nginx_proxy():
    """A plain nginx reverse proxy on the gateway core: no AI logic at all, so it shows
    what the rig's topology alone (two more loopback hops, each crossing cores) adds."""
    upstream = f"upstream up {{ server 127.0.0.1:{UPSTREAM_PORT}; keepalive 256; keepalive_requests 10000000; }}"
    p = nginx("nginx-proxy", GATEWAY_CORE, GATEWAY_PORT, upstream, """
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }""")
    t = Target(GATEWAY_PORT, "/plain/v1/chat/completions", stream_path="/stream/v1/chat/completions")
    wait_ready(p, t.port, t.path, b"{}", {})
    return p, t


def start_mock():
    p = start(
        "mock-upstream",
        [str(SWITCHYARD), "mock-upstream", "--listen", f"127.0.0.1:{MOCK_PORT}"],
        LOAD_CORE,
        env={"RUST_LOG": "warn"},
    )
    wait_ready(p, MOCK_PORT, "/v1/chat/completions", b'{"model":"mock-echo","messages":[{"role":"user","content":"hi"}]}', {})
    return p


# ---------------------------------------------------------------------------------------
# Systems under test. Each yields how to reach the plain and the streaming endpoint.


class Target:
    def __init__(self, port, path, plain_headers=None, stream_headers=None, plain_body=None,
                 stream_body=None, stream_path=None):
        self.port = port
        self.path = path
        self.stream_path = stream_path or path
        self.plain_headers = plain_headers or {}
        self.stream_headers = stream_headers or {}
        self.plain_body = plain_body or BENCH / "requests" / "chat.json"
        self.stream_body = stream_body or BENCH / "requests" / "chat-stream.json"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def stream_url(self):
        return f"http://127.0.0.1:{self.port}{self.stream_path}"


def switchyard_config(kind, upstream):
    """`kind` is "full" (filter + router + adapter), "library" (the same with the
    `least-latency` router), "governed" (the full chain with a
    named key in a team, rpm/tpm limits and a budget on both, so every request is
    counted, rate-limited, reserved and settled) or "adapter" (adapter only); `upstream`
    is "nginx" or "mock". Every kind writes the ledger and keeps metrics."""
    if upstream == "nginx":
        plain = f"http://127.0.0.1:{UPSTREAM_PORT}/plain/v1"
        stream = f"http://127.0.0.1:{UPSTREAM_PORT}/stream/v1"
        model = "bench-model"
    else:
        plain = stream = f"http://127.0.0.1:{MOCK_PORT}/v1"
        model = "mock-echo"
    lines = [
        "[server]",
        f'listen = "127.0.0.1:{GATEWAY_PORT}"',
        "[plugins]",
        # A private copy: the reload-under-load figure rewrites a plugin in it.
        f'dir = "{PLUGINS}"',
        f'cache_dir = "{WORK}/plugin-cache"',
        "[sandbox]",
        # Each open stream holds its decoder and filter instances: room for 1,000 streams.
        "max_instances = 4000",
        "[plugins.pii-redact]",
        'call_timeout = "50ms"',
        'config = { mode = "redact" }',
        "[auth]",
        'admin_keys = ["env:BENCH_ADMIN_KEY"]',
    ]
    if kind == "before":
        lines.append('keys = ["env:BENCH_CLIENT_KEY"]')
    else:
        lines += ["[state]", f'path = "{WORK}/switchyard-{kind}-{upstream}.db"']
    if kind == "before":
        pass
    elif kind == "governed":
        # Limits far above what one core serves: every check runs, none refuses.
        limits = ["rpm = 100000000", "tpm = 2000000000", "budget = 1000000.0", 'budget_period = "month"']
        lines += ["[teams.bench]", *limits,
                  "[keys.bench]", 'secret = "env:BENCH_CLIENT_KEY"', 'team = "bench"', *limits]
    else:
        lines += ["[keys.bench]", 'secret = "env:BENCH_CLIENT_KEY"']

    def deployment(name, base, model_id, extra=""):
        lines.extend([
            f"[deployments.{name}]",
            'adapter = "openai"',
            f'base_url = "{base}"',
            f'model = "{model_id}"',
            'api_key = "env:BENCH_UPSTREAM_KEY"',
            "input_price = 0.15",
            "output_price = 0.60",
            extra,
        ])

    # Two deployments per model so the router has a real choice to make. The `hold`
    # ones serve long-lived streams for the open-streams memory figure (always the
    # mock: nginx cannot hold a stream open).
    for suffix in ("a", "b"):
        deployment(f"plain-{suffix}", plain, model)
        deployment(f"stream-{suffix}", stream, model)
        deployment(f"hold-{suffix}", f"http://127.0.0.1:{MOCK_PORT}/v1", "mock-words-40+gap-500ms",
                   'idle_timeout = "30s"\ntotal_timeout = "120s"')

    def model_section(name, deps):
        lines.append(f"[models.{name}]")
        if kind in ("full", "governed", "before", "library"):
            lines.append(f"deployments = {json.dumps(deps)}")
            # `library`: the same chain with the plugin library's `least-latency` router.
            lines.append(f'router = "{"least-latency" if kind == "library" else "balanced"}"')
            lines.append('filters = ["pii-redact"]')
        else:
            lines.append(f"deployments = {json.dumps(deps[:1])}")

    model_section("bench", ["plain-a", "plain-b"])
    model_section("bench-stream", ["stream-a", "stream-b"])
    model_section("hold", ["hold-a", "hold-b"])
    path = WORK / f"switchyard-{kind}-{upstream}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_switchyard(kind, upstream="nginx"):
    PLUGINS.mkdir(parents=True, exist_ok=True)
    for f in (ROOT / "target" / "plugins").glob("*.wasm"):
        shutil.copyfile(f, PLUGINS / f.name)
    cfg = switchyard_config(kind, upstream)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{WORK}/switchyard-{kind}-{upstream}.db{suffix}").unlink(missing_ok=True)
    p = start(
        f"switchyard-{kind}-{upstream}",
        [str(SWITCHYARD_BEFORE if kind == "before" else SWITCHYARD), "serve", "--config", str(cfg)],
        GATEWAY_CORE,
        env={"RUST_LOG": "warn", "BENCH_CLIENT_KEY": CLIENT_KEY, "BENCH_UPSTREAM_KEY": UPSTREAM_KEY,
             "BENCH_ADMIN_KEY": ADMIN_KEY},
    )
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    t = Target(GATEWAY_PORT, "/v1/chat/completions", auth, auth)
    wait_ready(p, t.port, t.path, t.plain_body.read_bytes(), auth)
    return p, t


def start_competitor(name):
    script = BENCH / "competitors" / f"{name}.sh"
    upstream = f"http://127.0.0.1:{UPSTREAM_PORT}"
    plain, stream = f"{upstream}/plain/v1", f"{upstream}/stream/v1"
    # The script starts the server pinned (taskset is inherited), waits for a real
    # completion and prints the server's PID, which we adopt and later stop by PID.
    out = subprocess.run(["taskset", "-c", GATEWAY_CORE, "bash", str(script), "start",
                          str(GATEWAY_PORT), plain, stream],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"{name} did not start:\n{out.stderr[-3000:]}")
    p = adopt(name, int(out.stdout.strip().splitlines()[-1]))
    headers_plain, headers_stream = competitor_headers(name, plain, stream)
    t = Target(GATEWAY_PORT, "/v1/chat/completions", headers_plain, headers_stream)
    wait_ready(p, t.port, t.path, t.plain_body.read_bytes(), headers_plain)
    return p, t


def competitor_headers(name, plain, stream):
    if name == "portkey":
        # Portkey has no server-side routes: provider and upstream travel in every request.
        auth = {"authorization": "Bearer dummy", "x-portkey-provider": "openai"}
        return ({**auth, "x-portkey-custom-host": plain}, {**auth, "x-portkey-custom-host": stream})
    # LiteLLM refuses to start without a master key (competitors/litellm.sh).
    auth = {"authorization": "Bearer sk-switchyard-bench-key"}
    return auth, auth


# ---------------------------------------------------------------------------------------
# Load generators.


def oha(target, seconds, connections=64, rate=None, stream=False):
    body = target.stream_body if stream else target.plain_body
    headers = target.stream_headers if stream else target.plain_headers
    cmd = ["taskset", "-c", LOAD_CORE, str(OHA), "--no-tui", "--output-format", "json",
           "-z", f"{seconds}s", "-c", str(connections), "-m", "POST", "-D", str(body),
           "-T", "application/json"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    cmd.append(target.stream_url if stream else target.url)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    d = json.loads(out.stdout)
    codes = {int(k): v for k, v in (d.get("statusCodeDistribution") or {}).items()}
    errors = {k: v for k, v in (d.get("errorDistribution") or {}).items() if "deadline" not in k}
    ok = codes.get(200, 0)
    failed = sum(v for k, v in codes.items() if k != 200) + sum(errors.values())
    lat = d.get("latencyPercentiles") or {}
    duration = d["summary"]["total"]
    return {
        "ok": ok,
        "failed": failed,
        "errors": errors,
        "statuses": codes,
        "duration_s": duration,
        "rps": ok / duration if duration else 0.0,
        "p50_us": us(lat.get("p50")),
        "p90_us": us(lat.get("p90")),
        "p99_us": us(lat.get("p99")),
    }


def us(seconds):
    return None if seconds is None else seconds * 1e6


def stream_load(target, seconds, warmup, connections=64):
    cmd = ["taskset", "-c", LOAD_CORE, str(STREAM_LOAD), target.stream_url, str(target.stream_body),
           "--concurrency", str(connections), "--duration", str(seconds), "--warmup", str(warmup)]
    for k, v in target.stream_headers.items():
        cmd += ["--header", f"{k}: {v}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def hold_streams(target, n, gateway_pid):
    """Opens `n` long streams through the gateway; returns (ready line, RSS while open)."""
    body = WORK / "hold.json"
    body.write_text(json.dumps({"model": "hold", "stream": True,
                                "messages": [{"role": "user", "content": "hold this stream open"}]}))
    cmd = ["taskset", "-c", LOAD_CORE, str(STREAM_LOAD), target.stream_url, str(body), "--hold", str(n)]
    for k, v in target.stream_headers.items():
        cmd += ["--header", f"{k}: {v}"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        ready = p.stdout.readline().strip()
        time.sleep(1.0)
        rss = rss_mib(gateway_pid)
        rest = p.stdout.read()
        p.wait(timeout=180)
        result = json.loads(rest.strip().splitlines()[-1]) if rest.strip() else {}
        return ready, rss, result
    finally:
        if p.poll() is None:
            p.kill()


def overhead_sample(target, n=300):
    """Sequential keep-alive requests: client-measured latency and the gateway's own
    `x-switchyard-overhead-us`, per request."""
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
    body = target.plain_body.read_bytes()
    headers = {"content-type": "application/json", **target.plain_headers}
    lat, reported = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", target.path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        lat.append((time.perf_counter() - t0) * 1e6)
        h = r.getheader("x-switchyard-overhead-us")
        if h is not None:
            reported.append(float(h))
    conn.close()
    return statistics.median(lat), (statistics.median(reported) if reported else None)


# ---------------------------------------------------------------------------------------
# One system, all figures.


def settle(pid, limit=60.0):
    """Waits until the gateway is idle (under 5% of its core for half a second), so one
    phase's backlog (a slow gateway keeps working on requests the load generator already
    gave up on) does not leak into the next phase's figures."""
    if pid is None:
        time.sleep(0.5)
        return
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        c0 = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - c0 < 0.025:
            return


def measure(name, proc, target, plan, log):
    pid = proc.pid if proc else None
    r = {"system": name}
    log(f"[{name}] idle RSS")
    time.sleep(2)  # let start-up settle (allocator returning the start-up's memory)
    r["rss_idle_mib"] = rss_mib(pid) if pid else None
    log(f"[{name}] warm-up {plan.warmup}s (discarded)")
    oha(target, plan.warmup)
    stream_load(target, 1, 0, connections=8)
    settle(pid)

    log(f"[{name}] closed loop c64 {plan.closed}s")
    cpu0 = cpu_seconds(pid) if pid else None
    closed = oha(target, plan.closed)
    cpu1 = cpu_seconds(pid) if pid else None
    r["closed"] = closed
    if pid and closed["ok"]:
        r["cpu_us_per_req"] = (cpu1 - cpu0) / closed["ok"] * 1e6
        r["cpu_util"] = (cpu1 - cpu0) / closed["duration_s"]

    r["open"] = {}
    for rate in plan.rates:
        settle(pid)
        log(f"[{name}] open loop {rate} req/s {plan.open}s")
        o = oha(target, plan.open, rate=rate)
        o["target"] = rate
        # A run that fell short of its schedule measured its own queue, not the gateway.
        o["sustained"] = o["rps"] >= 0.99 * rate and o["failed"] <= 0.001 * max(o["ok"], 1)
        r["open"][rate] = o
        if not o["sustained"] and plan.stop_when_unsustained:
            break

    settle(pid)
    log(f"[{name}] streaming closed loop c64 {plan.stream}s")
    r["stream"] = stream_load(target, plan.stream, 1)
    r["rss_after_mib"] = rss_mib(pid) if pid else None
    return r


class Plan:
    def __init__(self, quick):
        self.quick = quick
        self.warmup = 1 if quick else 3
        self.closed = 2 if quick else 15
        self.open = 2 if quick else 10
        self.stream = 2 if quick else 10
        self.rates = [50, 500, 1000, 3000]
        self.stop_when_unsustained = True
        self.hold = 100 if quick else 1000


# ---------------------------------------------------------------------------------------
# Report.


def fmt_us(v):
    if v is None:
        return "–"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def fmt(v, spec="{:,.0f}"):
    return "–" if v is None else spec.format(v)


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release()}


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def report(results, extra, meta, plan):
    direct = next((r for r in results if r["system"] == "direct"), None)
    out = []
    w = out.append
    w(f"Run {meta['date']} · `{meta['command']}`" + (" · **--quick: not for quoting**" if plan.quick else ""))
    w("")
    w(f"Machine: {meta['machine']['nproc']} cores, {meta['machine']['cpu']}, Linux {meta['machine']['kernel']}. "
      f"Gateway pinned to core {GATEWAY_CORE}; load generator and upstream share core {LOAD_CORE}.")
    w("")
    w("Versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    w("")
    w(f"Upstream: nginx returning a fixed OpenAI `chat.completion` ({(BENCH / 'upstream/chat.json').stat().st_size} B) "
      f"and a fixed 12-event SSE stream ({(BENCH / 'upstream/chat.sse').stat().st_size} B), keep-alive.")
    w("")
    w("### Throughput, CPU and memory (closed loop, 64 connections)")
    w("")
    w("| system | req/s | p50 | p90 | p99 | errors | CPU per request | gateway core busy | RSS idle | RSS after load |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        c = r["closed"]
        w(f"| {r['system']} | {fmt(c['rps'])} | {fmt_us(c['p50_us'])} | {fmt_us(c['p90_us'])} | {fmt_us(c['p99_us'])} | "
          f"{c['failed']} | {fmt_us(r.get('cpu_us_per_req'))} | {fmt(r.get('cpu_util'), '{:.0%}')} | "
          f"{fmt(r.get('rss_idle_mib'), '{:.1f} MiB')} | {fmt(r.get('rss_after_mib'), '{:.1f} MiB')} |")
    w("")
    w("### Open loop (`oha -q RATE --latency-correction`): achieved rate, p50 / p99, added = system − direct")
    w("")
    rates = plan.rates
    w("| system | " + " | ".join(f"{q} req/s" for q in rates) + " |")
    w("|---|" + "---|" * len(rates))
    for r in results:
        cells = []
        for q in rates:
            o = r["open"].get(q)
            if o is None:
                cells.append("not run (lower rate not sustained)")
                continue
            if not o["sustained"]:
                cells.append(f"**not sustained** ({fmt(o['rps'])} req/s, {o['failed']} errors)")
                continue
            cell = f"{fmt(o['rps'])}: {fmt_us(o['p50_us'])} / {fmt_us(o['p99_us'])}"
            d = direct and direct["open"].get(q)
            if r is not direct and d and d["sustained"]:
                cell += f" (added {fmt_us(o['p50_us'] - d['p50_us'])} / {fmt_us(o['p99_us'] - d['p99_us'])})"
            if o["failed"]:
                cell += f", {o['failed']} errors"
            cells.append(cell)
        w(f"| {r['system']} | " + " | ".join(cells) + " |")
    w("")
    w("### Streaming (`\"stream\": true`, closed loop, 64 connections, `stream_load`)")
    w("")
    w("| system | streams/s | first byte p50 / p99 | end p50 / p99 | errors |")
    w("|---|---|---|---|---|")
    for r in results:
        s = r["stream"]
        t, e = s.get("ttfb_us") or {}, s.get("total_us") or {}
        w(f"| {r['system']} | {fmt(s['streams_per_s'])} | {fmt_us(t.get('p50'))} / {fmt_us(t.get('p99'))} | "
          f"{fmt_us(e.get('p50'))} / {fmt_us(e.get('p99'))} | {s['errors']}"
          + (f" (first: {s['first_error']})" if s.get("first_error") else "") + " |")
    w("")
    by = {r["system"]: r for r in results}
    sy = by.get("switchyard-full")
    if sy:
        w("### Ratios (Switchyard full chain ÷ other)")
        w("")
        w("| against | throughput (full ÷ other) | CPU per request (other ÷ full) | streams/s (full ÷ other) |")
        w("|---|---|---|---|")
        for other in ("litellm", "portkey"):
            o = by.get(other)
            if not o or not o["closed"]["rps"]:
                continue
            cpu = (f"{o['cpu_us_per_req'] / sy['cpu_us_per_req']:.1f}×" if o.get("cpu_us_per_req") and sy.get("cpu_us_per_req") else "–")
            st = (f"{sy['stream']['streams_per_s'] / o['stream']['streams_per_s']:.1f}×" if o["stream"]["streams_per_s"] else "–")
            w(f"| {other} | {sy['closed']['rps'] / o['closed']['rps']:.1f}× | {cpu} | {st} |")
        w("")
    if extra:
        w("### Switchyard only")
        w("")
        for line in extra:
            w(f"- {line}")
        w("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="seconds per system: checks the harness, not the gateways")
    default = [s for s in SYSTEMS if s != "switchyard-before" or SWITCHYARD_BEFORE]
    ap.add_argument("--systems", default=",".join(default), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    ap.add_argument("--no-mock", action="store_true", help="skip the extra run against `switchyard mock-upstream`")
    ap.add_argument("--out", default=str(WORK / "results.md"), help="where to write the table (also printed)")
    ap.add_argument("--command", default="bash tests/bench/run.sh " + " ".join(sys.argv[1:]))
    args = ap.parse_args()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if "switchyard-before" in systems and not SWITCHYARD_BEFORE:
        ap.error("switchyard-before needs SWITCHYARD_BEFORE_BIN (an earlier release build)")
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        ap.error(f"unknown systems: {', '.join(sorted(unknown))}")
    plan = Plan(args.quick)
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("the harness needs two cores (gateway on core 1, load and upstream on core 0)")

    def log(msg):
        print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": args.command.strip(),
        "machine": machine(),
        "versions": {
            "switchyard": version([str(SWITCHYARD), "--version"]),
            "oha": version([str(OHA), "--version"]),
            "nginx": version(["nginx", "-v"]),
        },
    }
    if "litellm" in systems:
        meta["versions"]["litellm"] = version(["bash", str(BENCH / "competitors" / "litellm.sh"), "version"])
    if "portkey" in systems:
        meta["versions"]["portkey"] = version(["bash", str(BENCH / "competitors" / "portkey.sh"), "version"])

    results, extra = [], []
    try:
        start_nginx()
        start_mock()
        if any(s.startswith("switchyard-") for s in systems):
            # Fills the compiled-plugin cache, so no system's idle RSS includes a compile.
            log("priming Switchyard's plugin cache")
            stop(start_switchyard("full")[0])
        for name in systems:
            log(f"== {name}")
            if name == "direct":
                results.append(measure("direct", None, direct_target(), plan, log))
                continue
            if name.startswith("switchyard-"):
                kind = name.split("-", 1)[1]
                proc, target = start_switchyard(kind)
            elif name == "nginx-proxy":
                proc, target = start_nginx_proxy()
            else:
                proc, target = start_competitor(name)
            try:
                r = measure(name, proc, target, plan, log)
                results.append(r)
                if name.startswith("switchyard-"):
                    extra.extend(switchyard_extras(name, proc, target, plan, results, log))
            finally:
                stop(proc)
        if not args.no_mock and any(s.startswith("switchyard-") for s in systems):
            extra.extend(mock_run(systems, plan, log))
    finally:
        stop_all()

    text = report(results, extra, meta, plan)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    (WORK / "results.json").write_text(json.dumps({"meta": meta, "results": results, "extra": extra}, indent=1, default=str))
    print(text)


def direct_target():
    """The upstream itself: the plain and the streaming body live at different paths."""
    return Target(UPSTREAM_PORT, "/plain/v1/chat/completions", stream_path="/stream/v1/chat/completions")


def custom_section(name, payload=b""):
    """A component custom section (id 0): valid anywhere, so appending one gives a new
    version of a plugin (new sha256, recompiled) that behaves exactly like the old."""
    def leb(n):
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)
    body = leb(len(name)) + name.encode() + payload
    return b"\x00" + leb(len(body)) + body


def reload_under_load(target, plan):
    """Replaces `pii-redact.wasm` (a new version each time) every second while the
    gateway serves 1,000 req/s; every request must still succeed."""
    plugin = PLUGINS / "pii-redact.wasm"
    original = plugin.read_bytes()
    done = threading.Event()
    written = []

    def swap():
        while not done.wait(1.0):
            data = original + custom_section(f"switchyard-bench-reload-{len(written) + 1}")
            tmp = plugin.with_name(".pii-redact.wasm.tmp")
            tmp.write_bytes(data)
            os.rename(tmp, plugin)
            written.append(hashlib.sha256(data).hexdigest())

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    try:
        run = oha(target, plan.open, rate=1000)
    finally:
        done.set()
        thread.join()
    served = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and written:
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=5)
        conn.request("GET", "/admin/plugins", headers={"authorization": f"Bearer {ADMIN_KEY}"})
        body = json.loads(conn.getresponse().read())
        conn.close()
        served = next((p.get("sha256") for p in body.get("plugins", []) if p.get("name") == "pii-redact"), None)
        if served == written[-1]:
            break
        time.sleep(0.2)
    plugin.write_bytes(original)
    return run, len(written), served == (written[-1] if written else None)


def switchyard_extras(name, proc, target, plan, results, log):
    lines = []
    direct = next((r for r in results if r["system"] == "direct"), None)
    log(f"[{name}] overhead header vs measured (300 sequential requests)")
    lat, reported = overhead_sample(target)
    d_lat = None
    if direct is not None:
        d_lat, _ = overhead_sample(direct_target())
    added = f"{lat - d_lat:.0f} µs added over direct ({lat:.0f} − {d_lat:.0f} µs)" if d_lat else f"{lat:.0f} µs client-side"
    lines.append(f"{name}: `x-switchyard-overhead-us` median {fmt(reported, '{:.0f}')} µs; measured by the harness "
                 f"(sequential keep-alive, Python client, median): {added}.")
    if name == "switchyard-governed":
        lines.append(ledger_check(name, target))
    if name == "switchyard-full":
        settle(proc.pid)
        log(f"[{name}] RSS with {plan.hold} open streams")
        ready, rss, result = hold_streams(target, plan.hold, proc.pid)
        lines.append(f"{name}: RSS with {plan.hold} concurrent open streams: {rss:.1f} MiB "
                     f"({ready}; {result.get('completed', '?')} completed, {result.get('errors', '?')} errors; "
                     f"upstream `switchyard mock-upstream`, 40 events 500 ms apart).")
        settle(proc.pid)
        log(f"[{name}] plugin reload under load (1,000 req/s, pii-redact replaced every second)")
        run, swaps, landed = reload_under_load(target, plan)
        lines.append(f"{name}: plugin reload under load: `pii-redact.wasm` replaced by a new version "
                     f"{swaps} times (once a second) during {plan.open} s at 1,000 req/s: {run['ok']:,} requests "
                     f"succeeded, **{run['failed']} failed**; p50 / p99 {fmt_us(run['p50_us'])} / {fmt_us(run['p99_us'])} "
                     f"(each new version is compiled on the gateway's only core); last version "
                     f"{'serving' if landed else 'NOT confirmed serving'} afterwards.")
    return lines


def ledger_check(name, target):
    """Did the ledger keep up? Rows written vs requests answered, from `/metrics` (the
    writer's own counters) after the writer's last batch."""
    time.sleep(0.5)
    req = urllib.request.Request(f"http://127.0.0.1:{target.port}/metrics",
                                 headers={"authorization": f"Bearer {ADMIN_KEY}"})
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    def total(metric):
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(metric) and not line.startswith("#"))
    requests, written = total("switchyard_requests_total"), total("switchyard_ledger_rows_written_total")
    dropped, queued = total("switchyard_ledger_rows_dropped_total"), total("switchyard_ledger_queue_depth")
    return (f"{name}: ledger kept up: {written:,.0f} rows written for {requests:,.0f} requests answered "
            f"({dropped:,.0f} dropped, {queued:,.0f} still queued).")


def mock_run(systems, plan, log):
    """Switchyard against its own `mock-upstream` instead of nginx, reported apart: the
    mock does more work per request than nginx, so these are not comparable to the table."""
    lines = []
    mock = Target(MOCK_PORT, "/v1/chat/completions",
                  plain_body=WORK / "mock-plain.json", stream_body=WORK / "mock-stream.json")
    for file, stream in (("mock-plain.json", False), ("mock-stream.json", True)):
        body = json.loads((BENCH / "requests" / "chat.json").read_text())
        body.update(model="mock-echo", stream=stream)
        (WORK / file).write_text(json.dumps(body))
    log("[mock] direct closed loop")
    oha(mock, plan.warmup)
    d = oha(mock, plan.closed)
    d1000 = oha(mock, plan.open, rate=1000)
    lines.append(f"against `switchyard mock-upstream` (not nginx): direct {fmt(d['rps'])} req/s closed loop; "
                 f"{fmt_us(d1000['p50_us'])} / {fmt_us(d1000['p99_us'])} at 1,000 req/s.")
    for name in [s for s in systems if s.startswith("switchyard-")]:
        kind = name.split("-", 1)[1]
        proc, target = start_switchyard(kind, upstream="mock")
        try:
            t = Target(target.port, target.path, target.plain_headers, target.stream_headers,
                       plain_body=BENCH / "requests" / "chat.json", stream_body=BENCH / "requests" / "chat-stream.json")
            log(f"[mock] {name}")
            oha(t, plan.warmup)
            c = oha(t, plan.closed)
            o = oha(t, plan.open, rate=1000)
            s = stream_load(t, plan.stream, 1)
            lines.append(f"against `switchyard mock-upstream`: {name} {fmt(c['rps'])} req/s closed loop; "
                         f"{fmt_us(o['p50_us'])} / {fmt_us(o['p99_us'])} at 1,000 req/s"
                         f"{'' if o['rps'] >= 950 else ' (not sustained)'}; {fmt(s['streams_per_s'])} streams/s.")
        finally:
            stop(proc)
    return lines


if __name__ == "__main__":
    main()
