"""The adapter's stream decoder: componentize-py wants the `stream-decoder` resource as
class `StreamDecoder` in a module named after the interface (`adapter.py`)."""
from typing import List

from wit_world.exports import adapter as a
from wit_world.imports import types

import app


class StreamDecoder(a.StreamDecoder):
    """One stream: each SSE `data:` event is a JSON chunk; `[DONE]` ends it."""

    def __init__(self, deployment: a.Deployment, status: int, headers: List[types.Header]) -> None:
        self.deployment = deployment

    def decode(self, event: a.StreamEvent) -> List[types.ChatChunk]:
        if event.data == b"[DONE]":
            return []
        v = app.read_object(event.data, "stream event")
        if isinstance(v.get("error"), dict):
            raise app.fail(types.ErrorKind.UPSTREAM_ERROR, str(v["error"].get("message", "stream error")))
        deltas = []
        for i, c in enumerate(v.get("choices") or []):
            deltas.append(types.ChoiceDelta(index=i, role=None,
                                            content=(c.get("delta") or {}).get("content"),
                                            reasoning=None, tool_calls=[],
                                            finish_reason=app.FINISH.get(c.get("finish_reason"))))
        created = v.get("created")
        created = created if isinstance(created, int) and 0 <= created < 2**64 else 0
        return [types.ChatChunk(id=str(v.get("id") or ""), model=str(v.get("model") or ""),
                                created=created, choices=deltas,
                                usage=app.usage(v.get("usage")))]

    def finish(self) -> List[types.ChatChunk]:
        return []
