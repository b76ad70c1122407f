// {{name}}: a Switchyard router. Deployments carrying the configured tag first, then the
// cheapest; deployments whose circuit is open last.
//
// Config (`[plugins.{{name}}] config = { prefer_tag = "fast" }`), optional.
import { config } from 'switchyard:plugin/host@0.1.0';

const KNOWN = new Set(['prefer_tag']);

function readConfig() {
  const cfg = JSON.parse(config() || '{}');
  for (const key of Object.keys(cfg)) {
    // A thrown `plugin-error` record; anything else would trap the instance.
    if (!KNOWN.has(key)) throw { kind: 'internal', message: `{{name}}: unknown config key \`${key}\`` };
  }
  return cfg;
}

export function rank(cfg, candidates) {
  const tag = cfg.prefer_tag;
  const key = (c) => [
    c.stats.circuit === 'open' ? 1 : 0,
    tag !== undefined && !c.tags.includes(tag) ? 1 : 0,
    c.inputPricePerMtok + c.outputPricePerMtok,
  ];
  return candidates
    .map((_, i) => i)
    .sort((a, b) => {
      const [ka, kb] = [key(candidates[a]), key(candidates[b])];
      return ka[0] - kb[0] || ka[1] - kb[1] || ka[2] - kb[2] || a - b;
    });
}

export const router = {
  route(request, candidates) {
    const order = rank(readConfig(), candidates);
    if (order.length > 0) {
      // console.log lines reach the gateway's log under the plugin's name.
      console.log(`{{name}}: ${request.model} -> ${candidates[order[0]].name}`);
    }
    return { order, shadow: undefined };
  },
};
