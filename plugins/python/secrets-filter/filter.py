"""The `stream-filter` resource of `switchyard:plugin/filter`.

componentize-py looks an exported resource up as the class of the same name in a module
named after its interface (`filter`), not in the app module, hence this file.

secrets-filter only scans prompts, so streamed answers pass through unchanged.
"""
from wit_world.exports import filter as f
from wit_world.imports import types


class StreamFilter(f.StreamFilter):
    def __init__(self, ctx: f.RequestContext) -> None:
        self.ctx = ctx

    def on_chunk(self, chunk: types.ChatChunk) -> f.ChunkVerdict:
        return f.ChunkVerdict_Emit([chunk])

    def finish(self) -> f.ChunkVerdict:
        # Nothing is ever held back, so there is nothing left to emit.
        return f.ChunkVerdict_Emit([])
