// tool-policy: per-team allow-lists of the tools (functions) a request may offer the
// model. A model can only call what it is offered, so checking the request's `tools`
// is enough to keep e.g. a `shell` or `send_email` tool away from teams not cleared
// for it, whatever the client application puts in its requests.
//
// Built with jco componentize against switchyard:plugin@0.1.0, world `filter-plugin`.
import { config } from 'switchyard:plugin/host@0.1.0';

const KNOWN_KEYS = new Set(['teams', 'default', 'strip']);

function fail(message) {
  // Thrown records become the `err(plugin-error)` result; the host then fails the
  // request closed (unless the model says filter_failure = "open").
  return { kind: 'internal', message };
}

function isNameList(v) {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

// Read per call: config changes apply without rebuilding the plugin.
function readConfig() {
  let cfg;
  try {
    cfg = JSON.parse(config() || '{}');
  } catch {
    throw fail('tool-policy: config is not valid JSON');
  }
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) {
    throw fail('tool-policy: config must be an object');
  }
  for (const key of Object.keys(cfg)) {
    if (!KNOWN_KEYS.has(key)) throw fail(`tool-policy: unknown config key \`${key}\``);
  }
  const teams = cfg.teams ?? {};
  if (teams === null || typeof teams !== 'object' || Array.isArray(teams)) {
    throw fail('tool-policy: `teams` must be an object of team name to tool names');
  }
  for (const [team, tools] of Object.entries(teams)) {
    if (!isNameList(tools)) throw fail(`tool-policy: \`teams.${team}\` must be a list of tool names`);
  }
  // No `default`: callers outside the listed teams may offer no tools at all. Failing
  // closed is the point of an allow-list.
  const dflt = cfg.default ?? [];
  if (!isNameList(dflt)) throw fail('tool-policy: `default` must be a list of tool names');
  const strip = cfg.strip ?? false;
  if (typeof strip !== 'boolean') throw fail('tool-policy: `strip` must be true or false');
  return { teams, dflt, strip };
}

function allowListFor(cfg, caller) {
  // hasOwn, not `in`: a team called `constructor` must not find Object's prototype.
  if (caller.team != null && Object.hasOwn(cfg.teams, caller.team)) {
    return { who: `team=${caller.team}`, allowed: new Set(cfg.teams[caller.team]) };
  }
  return { who: caller.team != null ? `team=${caller.team}(default)` : 'default', allowed: new Set(cfg.dflt) };
}

const allow = { verdict: { tag: 'allow' }, constraints: undefined };

class StreamFilter {
  // The policy is about what the request offers; answers pass through unchanged.
  constructor(ctx) { this.ctx = ctx; }
  onChunk(chunk) { return { tag: 'emit', val: [chunk] }; }
  finish() { return { tag: 'emit', val: [] }; }
}

export const filter = {
  onRequest(ctx, request) {
    const cfg = readConfig();
    if (request.tools.length === 0) return allow; // nothing to decide, nothing to log
    const { who, allowed } = allowListFor(cfg, ctx.caller);
    const denied = request.tools.filter((t) => !allowed.has(t.name)).map((t) => t.name);
    const prefix = `tool-policy: request ${ctx.requestId} ${who}`;
    if (denied.length === 0) {
      console.log(`${prefix} allowed tools [${request.tools.map((t) => t.name).join(',')}]`);
      return allow;
    }
    if (!cfg.strip) {
      console.log(`${prefix} denied: tools [${denied.join(',')}] not allowed`);
      return {
        verdict: {
          tag: 'deny',
          val: {
            status: 403,
            code: 'tool_not_allowed',
            message: `tool \`${denied[0]}\` is not allowed for this caller` +
              (denied.length > 1 ? ` (nor ${denied.slice(1).map((n) => `\`${n}\``).join(', ')})` : ''),
          },
        },
        constraints: undefined,
      };
    }
    const tools = request.tools.filter((t) => allowed.has(t.name));
    let toolChoice = request.toolChoice;
    let parallelToolCalls = request.parallelToolCalls;
    if (tools.length === 0) {
      // Providers reject tool_choice / parallel_tool_calls without tools.
      toolChoice = undefined;
      parallelToolCalls = undefined;
    } else if (toolChoice?.tag === 'function' && !allowed.has(toolChoice.val)) {
      // Forcing a stripped tool would be rejected upstream; let the model decide instead.
      toolChoice = undefined;
    }
    console.log(`${prefix} stripped tools [${denied.join(',')}], kept [${tools.map((t) => t.name).join(',')}]`);
    return {
      verdict: { tag: 'rewrite', val: { ...request, tools, toolChoice, parallelToolCalls } },
      constraints: undefined,
    };
  },
  onResponse(ctx, response) {
    return { tag: 'allow' };
  },
  StreamFilter,
};
