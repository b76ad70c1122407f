#!/usr/bin/env python3
"""Runs every case of every example plugin's `test.json` against the real gateway.

    python3 tests/python/test_plugin_cases.py [FILTER ...]

For each of plugins/python/{secrets-filter,tiered-router} and
plugins/js/{sticky-router,tool-policy} it builds the component with
`switchyard plugin build`, then, case by case, writes a gateway config (keys, teams,
deployments on a `switchyard mock-upstream`, the model, the plugin's config), starts
`switchyard serve` with its log in a file, sends the case's requests, and checks every
expectation against the responses, the requests the mock recorded and the gateway log.
A case that is wrong, or a plugin that regresses, fails the run (exit status 1).

FILTER words select cases: a case runs when every word is a substring of
"PLUGIN: CASE NAME" (e.g. `sticky` or `tiered circuit`).

Environment:
  SWITCHYARD_BIN               the switchyard binary (default target/debug/switchyard)
  SWITCHYARD_PLUGIN_CASES_DIR  folder of built components (NAME.wasm). Missing ones, and
                               ones older than their plugin's sources or the binary,
                               are (re)built into it; without it, all four are built
                               into a temp folder on every run
  SWITCHYARD_PLUGIN_CASES_CACHE  the gateway's compiled-plugin cache, shared by every
                               gateway of the run and kept across runs (default
                               target/plugin-cases-cache, where entries for components
                               other than this run's are deleted; a named one is not)
  COMPONENTIZE_PY, JCO         toolchains for the build (default target/pyenv/bin/
                               componentize-py and sdk/js/node_modules/.bin/jco)
  SWITCHYARD_PLUGIN_CASES_CALL_TIMEOUT  the plugin's call_timeout (default 1s; `default`
                               leaves the gateway's 100 ms, see CALL_TIMEOUT below)
  SWITCHYARD_PLUGIN_CASES_KEEP=1  keep the temp folder (configs, gateway logs, what the
                               mock recorded); it is always kept when a case fails

How the expectations are read (besides each file's `notes`):
  - status, content, error_code, error_message, deployment, deployment_every_time,
    stream_content_deltas, stream_ends_with hold for every request of the case
    (`repeat` sends the request that many times; deployment_by_caller sends one per
    caller, in the file's order);
  - log: the plugin writes one stdout line per request, and every line contains the
    text, except with deployment_by_caller, where one of the callers' lines must;
    log_first_5 / log_after_5: lines 1-5 / lines 6.. contain their text;
  - upstream: tools are compared by name; a tool field it leaves out (tools,
    tool_choice, parallel_tool_calls) must be absent upstream ("absent = not sent");
  - moved: the callers whose deployment changed since the nearest earlier case with the
    same config (checked on both cases' expectations and on this run's answers);
  - observed: a hand run's counts, not a prediction (anonymous callers are hashed from
    request ids, which start from the boot time); checked for consistency with the case
    (sums to the number of requests, names among model_deployments), this run's counts
    are printed;
  - gateway_warn(+_reason): one WARN line per request with the text (and `reason=...`);
  - secrets-filter: no secret of the request (found with the README's patterns) may
    appear in a response, the upstream body or the gateway log.
An expectation or case key the runner does not know fails the case.

Deliberately a plain script, not unittest/pytest: `tests/tests/e2e/openai_sdk.rs` runs
pytest over tests/python and counts its passes, so this module defines nothing pytest
collects and does all its work under `if __name__ == "__main__"`.
"""

import copy
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

__test__ = False  # nothing for pytest here (see the docstring)

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIRS = [
    "plugins/python/secrets-filter",
    "plugins/python/tiered-router",
    "plugins/js/sticky-router",
    "plugins/js/tool-policy",
]
MODEL = "chat"
MOCK_MODEL = "mock-echo"
READY_TIMEOUT = 120.0
# The sandbox's default budget per plugin call is 100 ms; an 18 MB Python component's
# first instantiation can take longer than that on a busy machine, and the gateway then
# rejects the plugin. The cases check behaviour, not speed, so the runner allows more.
# SWITCHYARD_PLUGIN_CASES_CALL_TIMEOUT=default keeps the gateway's default.
CALL_TIMEOUT = os.environ.get("SWITCHYARD_PLUGIN_CASES_CALL_TIMEOUT", "1s")

# Keys and teams, as the test.json notes declare them (sticky-router and tool-policy).
KEYS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
TEAMS = {"alice": "research", "bob": "research", "carol": "ops"}
DEFAULT_CALLER = "alice"  # "any valid client key works" for the cases naming none

# The request of a case that has no `request`, per the plugin's notes.
DEFAULT_TEXT = {"sticky-router": "hi", "tool-policy": "use a tool"}

# Independent of the plugin's own patterns (from the README's table), to find the
# secrets a secrets-filter request carries and check that none leaks anywhere.
LEAK_PATTERNS = [
    r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{20,}",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"(?<![A-Za-z0-9_\-])gh[pousr]_[A-Za-z0-9]{30,}",
    r"(?<![A-Za-z0-9_\-])github_pat_[A-Za-z0-9_]{30,}",
    r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
]
PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)

UPSTREAM_TOOL_FIELDS = {"tools", "tool_choice", "parallel_tool_calls"}

KNOWN_EXPECT = {
    "status", "content", "error_code", "error_message", "upstream_messages", "upstream",
    "upstream_absent", "log", "log_first_5", "log_after_5", "stream_content_deltas",
    "stream_ends_with", "deployment", "deployment_every_time", "deployment_by_caller",
    "deployments_used_at_least", "moved", "observed", "gateway_warn", "gateway_warn_reason",
    "why",
}
KNOWN_CASE = {
    "name", "config", "request", "expect", "model_deployments", "caller", "repeat",
    "gateway_without_keys", "tools", "request_extra",
}


class CaseFailure(Exception):
    pass


# --------------------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(v) -> str:
    """JSON value -> TOML (inline tables on one line)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise ValueError(f"cannot write {v!r} in TOML (no null)")


def toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def expand(v):
    """`{"repeat": S, "times": N}` in place of a string means S repeated N times."""
    if isinstance(v, dict):
        if set(v) == {"repeat", "times"} and isinstance(v["repeat"], str):
            return v["repeat"] * v["times"]
        return {k: expand(x) for k, x in v.items()}
    if isinstance(v, list):
        return [expand(x) for x in v]
    return v


def secret_of(name: str) -> str:
    return f"sy-{name}-" + "0" * (32 - len(name))


def leak_needles(request: dict) -> list:
    """Every secret-looking string in a request's text (PEM: its body lines)."""
    texts = []

    def walk(v):
        if isinstance(v, str):
            texts.append(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
    walk(request.get("messages", []))
    needles = set()
    for t in texts:
        for m in PEM.finditer(t):
            needles.update(line.strip() for line in m.group(1).splitlines() if len(line.strip()) >= 8)
        for p in LEAK_PATTERNS:
            needles.update(re.findall(p, t))
    return sorted(needles)


# --------------------------------------------------------------------------- processes

def die_with_parent():
    """Linux: the child gets SIGTERM if the runner dies without cleaning up (kill -9)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Proc:
    """A child process with its output in a file; stopped by its own pid only."""

    def __init__(self, args, log_path: Path, env=None, cwd=None):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                  cwd=cwd, preexec_fn=die_with_parent)

    def stop(self, grace=5.0):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()

    def text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")


def call(port: int, method: str, path: str, body=None, headers=None, timeout=60.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        hdrs = {"content-type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def wait_ready(port: int, proc: Proc, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise CaseFailure(f"gateway exited with {proc.p.returncode}:\n{proc.text()}")
        try:
            if call(port, "GET", "/readyz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise CaseFailure(f"gateway not ready within {timeout:.0f} s:\n{proc.text()}")


# --------------------------------------------------------------------------- build

def newest_source(d: Path) -> float:
    skip = {"node_modules", "__pycache__", ".bindings", "target"}
    t = 0.0
    for dirpath, dirnames, filenames in os.walk(d):
        dirnames[:] = [x for x in dirnames if x not in skip]
        for f in filenames:
            if f != "test.json" and not f.endswith(".md"):
                t = max(t, os.stat(os.path.join(dirpath, f)).st_mtime)
    return t


def build_plugins(bin_: Path, out: Path, names: dict):
    env = dict(os.environ)
    env.setdefault("COMPONENTIZE_PY", str(ROOT / "target/pyenv/bin/componentize-py"))
    env.setdefault("JCO", str(ROOT / "sdk/js/node_modules/.bin/jco"))
    out.mkdir(parents=True, exist_ok=True)
    for name, d in names.items():
        wasm = out / f"{name}.wasm"
        # The binary carries the WIT the component is built against.
        if wasm.exists() and wasm.stat().st_mtime >= max(newest_source(d), bin_.stat().st_mtime):
            print(f"using {wasm}", flush=True)
            continue
        if wasm.exists():
            print(f"rebuilding {wasm}: older than its sources or {bin_.name}", flush=True)
        t = time.monotonic()
        r = subprocess.run([str(bin_), "plugin", "build", str(d), "--out", str(out)], env=env,
                           capture_output=True, text=True)
        if r.returncode != 0 or not wasm.exists():
            sys.exit(f"plugin build {d} failed:\n{r.stdout}{r.stderr}")
        print(f"built {name} in {time.monotonic() - t:.1f} s", flush=True)


def prune_cache(cache: Path, keep: list):
    """Drops compiled components other than `keep`'s: builds are not byte-for-byte
    reproducible, so every fresh build is a new cache entry (~35 MB)."""
    import hashlib
    shas = {hashlib.sha256(p.read_bytes()).hexdigest() for p in keep}
    for f in cache.glob("*.cwasm"):
        if f.name.split("-", 1)[0] not in shas:
            f.unlink(missing_ok=True)


# --------------------------------------------------------------------------- cases

class Suite:
    def __init__(self, bin_: Path, built: Path, cache: Path, work: Path):
        self.bin = bin_
        self.built = built
        self.cache = cache
        self.work = work
        self.mock_port = free_port()
        self.mock = Proc([str(bin_), "mock-upstream", "--listen", f"127.0.0.1:{self.mock_port}"],
                         work / "mock.log")
        deadline = time.monotonic() + 30
        while True:
            try:
                if call(self.mock_port, "GET", "/__mock/requests", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if self.mock.p.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mock upstream did not start:\n{self.mock.text()}")
            time.sleep(0.02)
        self.secrets = work / "keys"
        self.secrets.mkdir()
        for k in KEYS:
            (self.secrets / k).write_text(secret_of(k))
        # deployment_by_caller seen per (plugin, case index), for `moved`.
        self.seen = {}

    def close(self):
        self.mock.stop()

    # ---- mock
    def mock_clear(self):
        call(self.mock_port, "DELETE", "/__mock/requests")

    def mock_requests(self) -> list:
        _, _, body = call(self.mock_port, "GET", "/__mock/requests")
        return [r for r in json.loads(body) if r["path"].endswith("/chat/completions")]

    # ---- config
    def config_text(self, spec: dict, case: dict, port: int) -> str:
        plugin, kind = spec["plugin"], spec["kind"]
        lines = [
            "[server]", f'listen = "127.0.0.1:{port}"',
            "[plugins]", 'dir = "plugins"', f"cache_dir = {json.dumps(str(self.cache))}",
        ]
        cfg = case.get("config")
        if isinstance(cfg, str):
            cfg = spec[cfg]  # e.g. "config_deny": a config defined at the file's top level
        lines += [f"[plugins.{plugin}]"]
        if CALL_TIMEOUT != "default":
            lines += [f"call_timeout = {json.dumps(CALL_TIMEOUT)}"]
        if cfg is not None:
            lines += [f"config = {toml_value(cfg)}"]
        if not case.get("gateway_without_keys"):
            for team in sorted(set(TEAMS.values())):
                lines += [f"[teams.{team}]"]
            for k in KEYS:
                lines += [f"[keys.{k}]", f"secret = {json.dumps('file:' + str(self.secrets / k))}"]
                if k in TEAMS:
                    lines += [f'team = "{TEAMS[k]}"']
        names = case.get("model_deployments") or ["mock"]
        declared = spec.get("deployments", {})
        for name in names:
            d = dict(declared.get(name, {}))
            lines += [
                f"[deployments.{name}]", 'adapter = "openai"',
                f'base_url = "http://127.0.0.1:{self.mock_port}/v1"',
                f"model = {json.dumps(d.pop('model', MOCK_MODEL))}",
            ]
            lines += [f"{k} = {toml_value(v)}" for k, v in d.items()]
        lines += [f"[models.{MODEL}]", f"deployments = {toml_value(names)}"]
        lines += [f'router = "{plugin}"'] if kind == "router" else [f'filters = ["{plugin}"]']
        return "\n".join(lines) + "\n"

    # ---- request
    def request_of(self, spec: dict, case: dict) -> dict:
        req = case.get("request")
        if isinstance(req, str):
            m = re.fullmatch(r"same as case (\d+)", req)
            if not m:
                raise CaseFailure(f"cannot read request {req!r}")
            req = spec["cases"][int(m.group(1)) - 1]["request"]
        if req is None:
            req = {"messages": [{"role": "user", "content": DEFAULT_TEXT[spec["plugin"]]}]}
        req = expand(copy.deepcopy(req))
        if "tools" in case:
            req["tools"] = [
                {"type": "function",
                 "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
                for n in case["tools"]
            ]
        req.update(copy.deepcopy(case.get("request_extra", {})))
        return {"model": MODEL, **req}

    # ---- one case
    def run_case(self, spec: dict, index: int, case: dict) -> list:
        """Returns the list of failed expectations (empty: passed)."""
        plugin = spec["plugin"]
        exp = case["expect"]
        problems = []
        unknown = (set(exp) - KNOWN_EXPECT) | (set(case) - KNOWN_CASE)
        if unknown:
            problems.append(f"the runner does not know {sorted(unknown)}")

        gw_dir = self.work / f"{plugin}-{index + 1}"
        n = 1
        while gw_dir.exists():
            n += 1
            gw_dir = self.work / f"{plugin}-{index + 1}.{n}"
        (gw_dir / "plugins").mkdir(parents=True)
        shutil.copy(ROOT / "target/plugins/openai.wasm", gw_dir / "plugins/openai.wasm")
        shutil.copy(self.built / f"{plugin}.wasm", gw_dir / f"plugins/{plugin}.wasm")
        port = free_port()
        (gw_dir / "sy.toml").write_text(self.config_text(spec, case, port))

        request = self.request_of(spec, case)
        anonymous = bool(case.get("gateway_without_keys"))
        repeat = case.get("repeat", 1)
        by_caller = exp.get("deployment_by_caller")
        if by_caller is not None:
            calls = [c for c in by_caller for _ in range(repeat)]
        else:
            calls = [None if anonymous else case.get("caller", DEFAULT_CALLER)] * repeat

        self.mock_clear()
        gw = Proc([str(self.bin), "serve", "--config", str(gw_dir / "sy.toml")], gw_dir / "gateway.log")
        results = []
        try:
            wait_ready(port, gw, READY_TIMEOUT)
            if f"plugin loaded plugin={plugin} " not in gw.text():
                rejected = [l for l in gw.text().splitlines() if f"plugin={plugin} " in l]
                raise CaseFailure(f"the gateway did not load {plugin}: {rejected}")
            for caller in calls:
                headers = {} if caller is None else {"authorization": f"Bearer {secret_of(caller)}"}
                status, hdrs, body = call(port, "POST", "/v1/chat/completions", request, headers)
                results.append((caller, status, hdrs, body))
            want_lines = len(calls) if any(k.startswith("log") for k in exp) else 0
            deadline = time.monotonic() + 5
            while len(plugin_lines(gw.text(), plugin)) < want_lines and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            gw.stop()
        log = gw.text()
        recorded = self.mock_requests()
        (gw_dir / "upstream.json").write_text(json.dumps(recorded, indent=1))
        lines = plugin_lines(log, plugin)

        def check(ok, what):
            if not ok:
                problems.append(what)

        # ---- every response
        for i, (caller, status, hdrs, body) in enumerate(results):
            who = f"request {i + 1}" + (f" ({caller})" if caller else "")
            text = body.decode(errors="replace")
            dep = hdrs.get("x-switchyard-deployment")
            if "status" in exp:
                check(status == exp["status"], f"{who}: status {status}, expected {exp['status']}: {text[:300]}")
            for key in ("deployment", "deployment_every_time"):
                if key in exp:
                    check(dep == exp[key], f"{who}: {key} {dep!r}, expected {exp[key]!r}")
            if by_caller is not None:
                check(dep == by_caller[caller], f"{who}: deployment {dep!r}, expected {by_caller[caller]!r}")
            is_stream = request.get("stream") is True
            parsed = None
            if not is_stream:
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
            if "content" in exp:
                got = None
                try:
                    got = parsed["choices"][0]["message"]["content"]
                except (TypeError, KeyError, IndexError):
                    pass
                check(got == exp["content"], f"{who}: content {got!r}, expected {exp['content']!r}")
            for key, field in (("error_code", "code"), ("error_message", "message")):
                if key in exp:
                    got = None
                    try:
                        got = parsed["error"][field]
                    except (TypeError, KeyError):
                        pass
                    check(got == exp[key], f"{who}: {key} {got!r}, expected {exp[key]!r}")
            if "stream_content_deltas" in exp:
                deltas, err = stream_deltas(text)
                check(err is None and deltas == exp["stream_content_deltas"],
                      f"{who}: stream content deltas {deltas!r}{' (' + err + ')' if err else ''}, "
                      f"expected {exp['stream_content_deltas']!r}")
            if "stream_ends_with" in exp:
                check(text.rstrip().endswith(exp["stream_ends_with"]),
                      f"{who}: stream ends with {text.rstrip()[-60:]!r}, expected …{exp['stream_ends_with']!r}")

        # ---- the set of responses
        deps = [r[2].get("x-switchyard-deployment") for r in results]
        if by_caller is not None:
            self.seen[(plugin, index)] = (case.get("config"), {r[0]: r[2].get("x-switchyard-deployment") for r in results})
        if "moved" in exp:
            problems += self.check_moved(spec, index, case)
        if "deployments_used_at_least" in exp:
            used = set(d for d in deps if d)
            check(len(used) >= exp["deployments_used_at_least"],
                  f"{len(used)} deployments used ({sorted(used)}), expected at least {exp['deployments_used_at_least']}")
        if "observed" in exp:
            # A record of one hand run, not a prediction: anonymous callers are spread by
            # a seed hashed from the request id, which starts from the boot time. Checked
            # for consistency with the case; the counts of this run are printed.
            obs = exp["observed"]
            check(sum(obs.values()) == len(calls), f"observed sums to {sum(obs.values())}, but {len(calls)} requests are sent")
            check(set(obs) <= set(case.get("model_deployments", [])), f"observed names {sorted(obs)} outside model_deployments")
            counts = {d: deps.count(d) for d in sorted(set(d for d in deps if d))}
            print(f"      observed this run: {counts} (test.json recorded {obs})")

        # ---- upstream
        if "upstream_messages" in exp:
            want = exp["upstream_messages"]
            if want is None:
                check(not recorded, f"expected nothing upstream, the mock recorded {len(recorded)} request(s)")
            else:
                bodies = [json.loads(r["body"]) for r in recorded]
                check(len(bodies) == len(calls), f"the mock recorded {len(bodies)} request(s), expected {len(calls)}")
                for b in bodies:
                    got = [[m.get("role"), m.get("content")] for m in b.get("messages", [])]
                    check(got == want, f"upstream messages {json.dumps(got)}, expected {json.dumps(want)}")
        if "upstream" in exp:
            want = exp["upstream"]
            if want is None:
                check(not recorded, f"expected nothing upstream, the mock recorded {len(recorded)} request(s)")
            else:
                bodies = [json.loads(r["body"]) for r in recorded]
                check(len(bodies) == len(calls), f"the mock recorded {len(bodies)} request(s), expected {len(calls)}")
                for b in bodies:
                    for key, value in want.items():
                        if key == "tools":
                            got = [t.get("function", {}).get("name") for t in b["tools"]] if "tools" in b else "<absent>"
                        else:
                            got = b.get(key, "<absent>")
                        check(got == value, f"upstream {key}: {got!r}, expected {value!r}")
                    # "(absent = not sent)": a tool field the expectation leaves out was not sent.
                    for key in UPSTREAM_TOOL_FIELDS - set(want):
                        check(key not in b, f"upstream {key}: {json.dumps(b.get(key))}, expected it absent")
        if "upstream_absent" in exp:
            for b in [json.loads(r["body"]) for r in recorded] or [{}]:
                present = [k for k in exp["upstream_absent"] if k in b]
                check(not present, f"upstream carries {present}: {json.dumps({k: b[k] for k in present})}")
            check(bool(recorded), "upstream_absent: nothing was sent upstream")

        # ---- the gateway log
        if any(k.startswith("log") for k in exp):
            check(len(lines) == len(calls),
                  f"{len(lines)} plugin stdout line(s) in the log, expected one per request ({len(calls)})")
        if "log" in exp:
            if by_caller is not None:
                # Each caller has its own line; the expected one is one of them.
                check(any(exp["log"] in l for l in lines), f"no plugin stdout line contains {exp['log']!r}")
            else:
                bad = [l for l in lines if exp["log"] not in l]
                check(lines and not bad, f"plugin stdout lines without {exp['log']!r}: {bad or '(no line)'}")
        if "log_first_5" in exp:
            bad = [l for l in lines[:5] if exp["log_first_5"] not in l]
            check(len(lines) >= 5 and not bad, f"first 5 plugin lines without {exp['log_first_5']!r}: {bad or lines}")
        if "log_after_5" in exp:
            bad = [l for l in lines[5:] if exp["log_after_5"] not in l]
            check(len(lines) > 5 and not bad, f"plugin lines after the 5th without {exp['log_after_5']!r}: {bad or lines}")
        if "gateway_warn" in exp:
            warns = [l for l in log.splitlines() if " WARN " in l and exp["gateway_warn"] in l]
            check(len(warns) == len(calls), f"{len(warns)} WARN line(s) with {exp['gateway_warn']!r}, expected {len(calls)}")
            if "gateway_warn_reason" in exp:
                reason = exp["gateway_warn_reason"]
                check(warns and all(f"reason={reason}" in l for l in warns),
                      f"WARN lines without reason={reason!r}: {warns}")

        # ---- secrets-filter: no secret anywhere (notes)
        if plugin == "secrets-filter":
            places = [("response", r[3].decode(errors="replace")) for r in results]
            places += [("upstream body", r["body"]) for r in recorded]
            places += [("gateway log", log)]
            for needle in leak_needles(request):
                for where, text in places:
                    check(needle not in text, f"secret {needle[:12]}… leaked into the {where}")

        if problems:
            problems.append("plugin stdout lines:\n        " + "\n        ".join(lines or ["(none)"]))
            problems.append(f"gateway log: {gw.log_path}")
        return problems

    def check_moved(self, spec, index, case) -> list:
        """`moved`: the callers whose deployment differs from the nearest earlier case
        with the same config and a deployment_by_caller (there: the four deployments)."""
        exp = case["expect"]
        want = sorted(exp["moved"])
        for j in range(index - 1, -1, -1):
            prev = spec["cases"][j]
            if prev.get("config") == case.get("config") and "deployment_by_caller" in prev["expect"]:
                break
        else:
            return ["moved: no earlier case with the same config to compare with"]
        problems = []
        before, after = prev["expect"]["deployment_by_caller"], exp["deployment_by_caller"]
        spec_moved = sorted(c for c in after if c in before and before[c] != after[c])
        if spec_moved != want:
            problems.append(f"moved {want}, but the two cases' deployment_by_caller differ for {spec_moved}")
        seen = self.seen.get((spec["plugin"], j))
        now = self.seen.get((spec["plugin"], index))
        if seen and now:
            got = sorted(c for c in now[1] if c in seen[1] and seen[1][c] != now[1][c])
            if got != want:
                problems.append(f"callers that moved this run: {got}, expected {want}")
        gone = set(prev.get("model_deployments", [])) - set(case.get("model_deployments", []))
        if gone:
            on_gone = sorted(c for c in before if before[c] in gone)
            if on_gone != want:
                problems.append(f"moved {want}, but the callers on the removed {sorted(gone)} were {on_gone}")
        return problems


def plugin_lines(log: str, plugin: str) -> list:
    return [l for l in log.splitlines() if f"plugin={plugin} " in l + " " and 'stream="stdout"' in l]


def stream_deltas(text: str):
    """The `choices[0].delta.content` of every SSE chunk that has one, in order."""
    deltas = []
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            continue
        try:
            chunk = json.loads(data)
        except ValueError:
            return deltas, f"not JSON: {data[:80]!r}"
        for ch in chunk.get("choices", []):
            delta = ch.get("delta", {})
            if ch.get("index", 0) == 0 and delta.get("content") is not None:
                deltas.append(delta["content"])
    return deltas, None


# --------------------------------------------------------------------------- main

def main(argv) -> int:
    started = time.monotonic()
    bin_ = Path(os.environ.get("SWITCHYARD_BIN", ROOT / "target/debug/switchyard"))
    if not bin_.exists():
        sys.exit(f"{bin_} is missing: build the gateway first (cargo build)")
    if not (ROOT / "target/plugins/openai.wasm").exists():
        sys.exit("target/plugins/openai.wasm is missing: run `bash scripts/build-plugins.sh`")
    filters = [w.lower() for w in argv]
    specs = []
    for d in PLUGIN_DIRS:
        spec = json.loads((ROOT / d / "test.json").read_text())
        specs.append((ROOT / d, spec))

    def selected(spec, case):
        label = f"{spec['plugin']}: {case['name']}".lower()
        return all(w in label for w in filters)

    wanted = {spec["plugin"]: d for d, spec in specs if any(selected(spec, c) for c in spec["cases"])}
    if not wanted:
        sys.exit(f"no case matches {argv}")

    work = Path(tempfile.mkdtemp(prefix="switchyard-plugin-cases-"))
    keep = os.environ.get("SWITCHYARD_PLUGIN_CASES_KEEP") == "1"
    built = Path(os.environ.get("SWITCHYARD_PLUGIN_CASES_DIR") or work / "built")
    own_cache = not os.environ.get("SWITCHYARD_PLUGIN_CASES_CACHE")
    cache = Path(os.environ.get("SWITCHYARD_PLUGIN_CASES_CACHE") or ROOT / "target/plugin-cases-cache")
    cache.mkdir(parents=True, exist_ok=True)
    suite = None
    totals = {}
    failed = []
    try:
        build_plugins(bin_, built, wanted)
        if own_cache:  # a cache the caller names may be shared: left alone
            prune_cache(cache, [ROOT / "target/plugins/openai.wasm"]
                        + [p for p in built.glob("*.wasm")])
        suite = Suite(bin_, built, cache, work)
        for _, spec in specs:
            plugin = spec["plugin"]
            for i, case in enumerate(spec["cases"]):
                if not selected(spec, case):
                    continue
                t = time.monotonic()
                try:
                    problems = suite.run_case(spec, i, case)
                except CaseFailure as e:
                    problems = [str(e)]
                except Exception:  # a runner bug still fails the run, with its trace
                    problems = [traceback.format_exc()]
                n = totals.setdefault(plugin, [0, 0])
                n[1] += 1
                label = f"{plugin} #{i + 1}: {case['name']}"
                if problems:
                    failed.append(label)
                    print(f"FAIL {label} ({time.monotonic() - t:.1f} s)")
                    for p in problems:
                        print(f"      {p}")
                else:
                    n[0] += 1
                    print(f"ok   {label} ({time.monotonic() - t:.1f} s)")
                sys.stdout.flush()
    finally:
        if suite:
            suite.close()
        if keep or failed:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    for plugin, (ok, n) in totals.items():
        print(f"{plugin}: {ok}/{n} passed")
    print(f"{'FAILED' if failed else 'all passed'} in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
