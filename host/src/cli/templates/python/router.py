"""{{name}}: a Switchyard router. Deployments carrying the configured tag first, then the
cheapest; deployments whose circuit is open last.

Config (`[plugins.{{name}}] config = { prefer_tag = "fast" }`), optional.
"""
import json
from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import router
from wit_world.imports import host, types

KNOWN = {"prefer_tag"}


def read_config() -> dict:
    # Read per call, never at import: componentize-py runs the module at build time.
    cfg = json.loads(host.config() or "{}")
    for key in cfg:
        if key not in KNOWN:
            raise Err(types.PluginError(kind=types.ErrorKind.INTERNAL,
                                        message=f"{{name}}: unknown config key `{key}`"))
    return cfg


def rank(cfg: dict, candidates: List[router.Candidate]) -> List[int]:
    tag = cfg.get("prefer_tag")

    def key(i: int):
        c = candidates[i]
        return (c.stats.circuit == router.CircuitState.OPEN,
                tag is not None and tag not in c.tags,
                c.input_price_per_mtok + c.output_price_per_mtok,
                i)

    return sorted(range(len(candidates)), key=key)


class Router(exports.Router):
    def route(self, request: router.RouteRequest,
              candidates: List[router.Candidate]) -> router.RouteDecision:
        order = rank(read_config(), candidates)
        if order:
            # print() lines reach the gateway's log under the plugin's name.
            print(f"{{name}}: {request.model} -> {candidates[order[0]].name}")
        return router.RouteDecision(order=order, shadow=None)
