"""The filter's stream hook: componentize-py wants the `stream-filter` resource as class
`StreamFilter` in a module named after the interface (`filter.py`)."""
from wit_world.exports import filter as f
from wit_world.imports import types


class StreamFilter(f.StreamFilter):
    """Passes every streamed chunk through unchanged."""

    def __init__(self, ctx: f.RequestContext) -> None:
        self.ctx = ctx

    def on_chunk(self, chunk: types.ChatChunk) -> f.ChunkVerdict:
        return f.ChunkVerdict_Emit([chunk])

    def finish(self) -> f.ChunkVerdict:
        return f.ChunkVerdict_Emit([])
