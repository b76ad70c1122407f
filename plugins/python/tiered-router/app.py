"""tiered-router: small prompts to small (cheap, fast) deployments, big prompts and
tool use to large ones, cheapest first within a tier, everything else as fallback.

Built with componentize-py against `switchyard:plugin@0.1.0`, world `router-plugin`.
"""
import json
from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import router
from wit_world.imports import host, types

DEFAULTS = {"small_max_tokens": 1000, "small_tag": "small", "large_tag": "large", "tools_tag": None}


def _fail(message: str) -> Err:
    # `internal` because a bad config is the operator's bug, not the client's; the host
    # logs the message and falls back to the config's order.
    return Err(types.PluginError(kind=types.ErrorKind.INTERNAL, message=message))


def _config() -> dict:
    # Read per call, never at import: componentize-py runs the module at build time,
    # when there is no host to ask.
    try:
        raw = json.loads(host.config() or "{}")
    except ValueError:
        raise _fail("tiered-router: config is not valid JSON")
    if not isinstance(raw, dict):
        raise _fail("tiered-router: config must be an object")
    for key in raw:
        if key not in DEFAULTS:
            # A typo (`small_max_token`) must not silently fall back to the default.
            raise _fail(f"tiered-router: unknown config key `{key}`")
    cfg = {**DEFAULTS, **raw}
    limit = cfg["small_max_tokens"]
    # bool is an int in Python; `true` is not a token count.
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise _fail("tiered-router: `small_max_tokens` must be a non-negative integer")
    for key in ("small_tag", "large_tag"):
        if not isinstance(cfg[key], str) or not cfg[key]:
            raise _fail(f"tiered-router: `{key}` must be a non-empty string")
    if cfg["tools_tag"] is not None and (not isinstance(cfg["tools_tag"], str) or not cfg["tools_tag"]):
        raise _fail("tiered-router: `tools_tag` must be a non-empty string or null")
    return cfg


class Router(exports.Router):
    def route(self, request: router.RouteRequest, candidates: List[router.Candidate]) -> router.RouteDecision:
        cfg = _config()
        if request.has_tools and cfg["tools_tag"]:
            tier, tag = "tools", cfg["tools_tag"]
        elif request.has_tools or request.estimated_prompt_tokens > cfg["small_max_tokens"]:
            # Tool use needs a capable model even for a short prompt.
            tier, tag = "large", cfg["large_tag"]
        else:
            tier, tag = "small", cfg["small_tag"]

        def rank(i: int):
            c = candidates[i]
            return (
                # The host also moves open circuits last; doing it here keeps the
                # order we log equal to the order actually tried.
                c.stats.circuit == router.CircuitState.OPEN,
                tag not in c.tags,
                c.input_price_per_mtok + c.output_price_per_mtok,
                i,  # config order breaks ties, so the answer is deterministic
            )

        # Every index exactly once: deployments outside the tier stay as fallbacks.
        order = sorted(range(len(candidates)), key=rank)
        names = ",".join(candidates[i].name for i in order)
        print(f"tiered-router: model={request.model} tokens={request.estimated_prompt_tokens} "
              f"tools={'yes' if request.has_tools else 'no'} tier={tier} order={names}")
        return router.RouteDecision(order=order, shadow=None)
