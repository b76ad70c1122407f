// sticky-router: session affinity by rendezvous (highest-random-weight) hashing.
//
// Every caller gets a stable preference order over the deployments: the same caller
// lands on the same deployment as long as the set of deployments is unchanged (so
// provider-side prompt caches and per-deployment state stay warm), and when one
// deployment disappears only the callers that were on it move. No state is kept:
// the order is recomputed from the caller's identity on every request.
//
// Built with jco componentize against switchyard:plugin@0.1.0, world `router-plugin`.
import { config } from 'switchyard:plugin/host@0.1.0';

const KNOWN_KEYS = new Set(['by']);

function fail(message) {
  // Thrown records become the `err(plugin-error)` result. `internal`: a bad config is the
  // operator's bug; the host logs the message and falls back to the config's order.
  return { kind: 'internal', message };
}

// Read per call: config changes apply without rebuilding the plugin.
function readConfig() {
  let cfg;
  try {
    cfg = JSON.parse(config() || '{}');
  } catch {
    throw fail('sticky-router: config is not valid JSON');
  }
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) {
    throw fail('sticky-router: config must be an object');
  }
  for (const key of Object.keys(cfg)) {
    // A typo (`bye = "team"`) must not silently fall back to the default.
    if (!KNOWN_KEYS.has(key)) throw fail(`sticky-router: unknown config key \`${key}\``);
  }
  const by = cfg.by ?? 'key';
  if (by !== 'key' && by !== 'team') throw fail('sticky-router: `by` must be "key" or "team"');
  return { by };
}

// Who the request belongs to. Callers without the chosen identity fall back to the
// next best one; anonymous callers (no keys configured) use the per-request seed, so
// their requests are spread rather than all piled onto one deployment.
function affinityKey(by, caller, seed) {
  if (by === 'team' && caller.team != null) return `team:${caller.team}`;
  if (caller.keyId != null) return `key:${caller.keyId}`;
  return `seed:${seed}`; // u64 arrives as a BigInt; its decimal text is stable
}

const encoder = new TextEncoder();

// 32-bit FNV-1a over UTF-8 bytes, then murmur3's fmix32 finaliser: FNV alone mixes the
// last bytes poorly, and deployment names often differ only there (`gpu-1`, `gpu-2`).
function hash32(text) {
  let h = 0x811c9dc5;
  for (const b of encoder.encode(text)) {
    h = Math.imul(h ^ b, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// Weighted rendezvous score: -weight / ln(u) with u uniform in (0, 1). Unlike
// `u * weight`, this gives each deployment a share of callers proportional to its
// weight, and it keeps the rendezvous property (a deployment's score does not depend
// on the others). Weight 0 scores 0: fallback only.
function score(key, candidate) {
  // "\n" separates the two parts so that ("ab", "c") and ("a", "bc") differ.
  const u = (hash32(`${key}\n${candidate.name}`) + 0.5) / 4294967296;
  return -candidate.weight / Math.log(u);
}

export const router = {
  route(request, candidates) {
    const { by } = readConfig();
    const key = affinityKey(by, request.caller, request.requestSeed);
    const scored = candidates.map((c, i) => ({ i, open: c.stats.circuit === 'open', s: score(key, c) }));
    scored.sort((a, b) =>
      // Open circuits last (the host does this too; doing it here keeps the logged order
      // honest), then highest score, then config order for exact ties.
      (a.open - b.open) || (b.s - a.s) || (a.i - b.i));
    const order = scored.map((x) => x.i);
    // The affinity key is a key *name* or team, never a credential.
    console.log(`sticky-router: model=${request.model} by=${by} caller=${key} ` +
      `order=${order.map((i) => candidates[i].name).join(',')}`);
    return { order, shadow: undefined };
  },
};
