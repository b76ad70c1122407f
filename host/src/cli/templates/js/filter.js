// {{name}}: a Switchyard filter. Refuses requests whose user messages contain a
// configured word (case-insensitive), before anything is sent upstream.
//
// Config (`[plugins.{{name}}] config = { words = ["project zeus"] }`).
import { config } from 'switchyard:plugin/host@0.1.0';

function readConfig() {
  const cfg = JSON.parse(config() || '{}');
  for (const key of Object.keys(cfg)) {
    // A thrown `plugin-error` record; anything else would trap the instance.
    if (key !== 'words') throw { kind: 'internal', message: `{{name}}: unknown config key \`${key}\`` };
  }
  return cfg;
}

export function blocked(words, request) {
  for (const m of request.messages) {
    if (m.role !== 'user') continue;
    for (const part of m.content) {
      if (part.tag !== 'text') continue;
      const text = part.val.toLowerCase();
      const hit = words.find((w) => text.includes(w.toLowerCase()));
      if (hit !== undefined) return hit;
    }
  }
  return undefined;
}

/** Passes every streamed chunk through unchanged. */
class StreamFilter {
  constructor(ctx) { this.ctx = ctx; }
  onChunk(chunk) { return { tag: 'emit', val: [chunk] }; }
  finish() { return { tag: 'emit', val: [] }; }
}

export const filter = {
  onRequest(ctx, request) {
    const word = blocked(readConfig().words ?? [], request);
    if (word === undefined) return { verdict: { tag: 'allow' }, constraints: undefined };
    // console.log lines reach the gateway's log under the plugin's name.
    console.log(`{{name}}: request ${ctx.requestId} refused: contains ${JSON.stringify(word)}`);
    const denial = { status: 400, code: 'content_policy_violation', message: 'The request contains a blocked word.' };
    return { verdict: { tag: 'deny', val: denial }, constraints: undefined };
  },
  onResponse(ctx, response) { return { tag: 'allow' }; },
  StreamFilter,
};
