"""secrets-filter: keeps credentials pasted into prompts from leaving the gateway.

Scans the text of system, developer, user and tool messages for API keys, tokens and
private keys, and either replaces each with `[REDACTED:SECRET]` (mode `redact`, the
default) or refuses the request (mode `deny`). Responses and streams pass through
unchanged (see filter.py).

Built with componentize-py against `switchyard:plugin@0.1.0`, world `filter-plugin`.
"""
import dataclasses
import json
import re
from collections import Counter

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import filter as f
from wit_world.imports import host, types

MARKER = "[REDACTED:SECRET]"

# One alternation with a named group per kind, so a single pass finds them all and the
# log can say which kinds were seen. Order matters: `sk-ant-` must win over the generic
# `sk-`. The look-behinds keep a match from starting in the middle of a longer token.
# Compiled at import, which componentize-py runs at build time, so requests never pay
# for compiling it.
_B = r"(?<![A-Za-z0-9_\-])"
PATTERN = re.compile(
    r"(?P<pem>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
    # A key pasted without its END line is still a key: redact to the end of the text.
    r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|.*\Z))"
    rf"|(?P<anthropic_key>{_B}sk-ant-[A-Za-z0-9_\-]{{20,}})"
    rf"|(?P<openai_key>{_B}sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{{20,}})"
    r"|(?P<aws_access_key_id>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)"
    rf"|(?P<github_token>{_B}(?:gh[pousr]_[A-Za-z0-9]{{30,}}|github_pat_[A-Za-z0-9_]{{30,}}))"
    rf"|(?P<jwt>{_B}eyJ[A-Za-z0-9_\-]{{8,}}\.[A-Za-z0-9_\-]{{8,}}\.[A-Za-z0-9_\-]{{8,}})",
    re.DOTALL,
)

# Every match of PATTERN contains one of these; `in` is a fast substring search, so text
# without any of them (almost every prompt) never enters the regular expression engine,
# which in an interpreter compiled to Wasm costs about 150 µs per KB.
_LITERALS = ("PRIVATE KEY-----", "sk-", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
             "github_pat_", "eyJ")

# Assistant turns are the model's own words (and tool-call arguments are the model's
# output); a secret there was already sent upstream once.
SCANNED_ROLES = {types.Role.SYSTEM, types.Role.DEVELOPER, types.Role.USER, types.Role.TOOL}


def _fail(message: str) -> Err:
    return Err(types.PluginError(kind=types.ErrorKind.INTERNAL, message=message))


_MODE = None


def _mode() -> str:
    # Read on the first call, never at import: at build time there is no host to ask.
    # Kept for the instance's life, which a config change ends (the plugin is reloaded).
    global _MODE
    if _MODE is None:
        _MODE = _read_mode()
    return _MODE


def _read_mode() -> str:
    try:
        cfg = json.loads(host.config() or "{}")
    except ValueError:
        raise _fail("secrets-filter: config is not valid JSON")
    if not isinstance(cfg, dict):
        raise _fail("secrets-filter: config must be an object")
    for key in cfg:
        if key != "mode":
            raise _fail(f"secrets-filter: unknown config key `{key}`")
    mode = cfg.get("mode", "redact")
    if mode not in ("redact", "deny"):
        raise _fail("secrets-filter: `mode` must be \"redact\" or \"deny\"")
    return mode


def _scrub(text: str, found: Counter) -> str:
    if not any(lit in text for lit in _LITERALS):
        return text

    def replace(m: re.Match) -> str:
        found[m.lastgroup] += 1
        return MARKER
    return PATTERN.sub(replace, text)


class Filter(exports.Filter):
    def on_request(self, ctx: f.RequestContext, request: types.ChatRequest) -> f.RequestOutcome:
        mode = _mode()
        found: Counter = Counter()
        messages = []
        for m in request.messages:
            if m.role in SCANNED_ROLES:
                seen = sum(found.values())
                content = [
                    types.ContentPart_Text(_scrub(p.value, found)) if isinstance(p, types.ContentPart_Text) else p
                    for p in m.content
                ]
                if sum(found.values()) != seen:
                    m = dataclasses.replace(m, content=content)
            messages.append(m)

        total = sum(found.values())
        noun = "secret" if total == 1 else "secrets"
        # Counts and kinds only: the log must never become the place the secret leaks to.
        kinds = ", ".join(f"{k}={n}" for k, n in sorted(found.items()))
        if total == 0:
            print(f"secrets-filter: request {ctx.request_id}: 0 secrets found")
            return f.RequestOutcome(verdict=f.RequestVerdict_Allow(), constraints=None)
        if mode == "deny":
            print(f"secrets-filter: request {ctx.request_id}: {total} {noun} found ({kinds}); denied")
            return f.RequestOutcome(
                verdict=f.RequestVerdict_Deny(f.Denial(
                    status=400,
                    code="secret_detected",
                    # Kinds only, never the value: the client may log this message.
                    message=f"the request contains {total} {'credential' if total == 1 else 'credentials'} "
                            f"({', '.join(sorted(found))}); remove {'it' if total == 1 else 'them'} and retry",
                )),
                constraints=None,
            )
        print(f"secrets-filter: request {ctx.request_id}: {total} {noun} found ({kinds}); redacted")
        return f.RequestOutcome(
            verdict=f.RequestVerdict_Rewrite(dataclasses.replace(request, messages=messages)),
            constraints=None,
        )

    def on_response(self, ctx: f.RequestContext, response: types.ChatResponse) -> f.ResponseVerdict:
        # Prompts only: what the model says is out of scope (use pii-redact or
        # deny-list on answers).
        return f.ResponseVerdict_Allow()
