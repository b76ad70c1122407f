"""{{name}}: a Switchyard filter. Refuses requests whose user messages contain a
configured word (case-insensitive), before anything is sent upstream.

Config (`[plugins.{{name}}] config = { words = ["project zeus"] }`).
"""
import json
from typing import Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import filter as f
from wit_world.imports import host, types


def read_config() -> dict:
    # Read per call, never at import: componentize-py runs the module at build time.
    cfg = json.loads(host.config() or "{}")
    for key in cfg:
        if key != "words":
            raise Err(types.PluginError(kind=types.ErrorKind.INTERNAL,
                                        message=f"{{name}}: unknown config key `{key}`"))
    return cfg


def blocked(words, request: types.ChatRequest) -> Optional[str]:
    for m in request.messages:
        if m.role != types.Role.USER:
            continue
        for part in m.content:
            if isinstance(part, types.ContentPart_Text):
                text = part.value.lower()
                for w in words:
                    if w.lower() in text:
                        return w
    return None


class Filter(exports.Filter):
    def on_request(self, ctx: f.RequestContext, request: types.ChatRequest) -> f.RequestOutcome:
        word = blocked(read_config().get("words", []), request)
        if word is None:
            return f.RequestOutcome(verdict=f.RequestVerdict_Allow(), constraints=None)
        # print() lines reach the gateway's log under the plugin's name.
        print(f"{{name}}: request {ctx.request_id} refused: contains {word!r}")
        denial = f.Denial(status=400, code="content_policy_violation",
                          message="The request contains a blocked word.")
        return f.RequestOutcome(verdict=f.RequestVerdict_Deny(denial), constraints=None)

    def on_response(self, ctx: f.RequestContext, response: types.ChatResponse) -> f.ResponseVerdict:
        return f.ResponseVerdict_Allow()
