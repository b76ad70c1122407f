// {{name}}: a Switchyard adapter for a server speaking OpenAI's Chat Completions
// (`POST {base_url}/chat/completions`: vLLM, llama.cpp's server, Ollama, LM Studio), text
// only, streamed or not. The host does the HTTP call and adds the credential; this code
// only writes the request and reads the answer. Start here for your own model's API.
//
// Deployment settings (`[deployments.NAME.settings]`), optional: `path = "/chat/completions"`.

const ROLES = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant', tool: 'tool' };
const FINISH = { stop: 'stop', length: 'length', tool_calls: 'tool-calls', content_filter: 'content-filter' };

// A thrown `plugin-error` record; anything else would trap the instance.
const fail = (kind, message) => ({ kind, message });

function readObject(bytes, what) {
  let v;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw fail('bad-upstream-response', `the ${what} is not JSON`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw fail('bad-upstream-response', `the ${what} is not a JSON object`);
  }
  return v;
}

// Whole numbers in range only: anything else would trap when handed to the host.
const count = (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32;
const unixSeconds = (n) => BigInt(Number.isInteger(n) && n >= 0 ? n : 0);

function usage(u) {
  if (!u || !count(u.prompt_tokens) || !count(u.completion_tokens)) return undefined;
  return { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens, cachedTokens: 0,
    cacheCreationTokens: 0, reasoningTokens: 0 };
}

/** One stream: each SSE `data:` event is a JSON chunk; `[DONE]` ends it. */
class StreamDecoder {
  constructor(deployment, status, headers) { this.deployment = deployment; }

  decode(event) {
    const text = new TextDecoder().decode(event.data);
    if (text === '[DONE]') return [];
    const v = readObject(event.data, 'stream event');
    if (v.error) throw fail('upstream-error', String(v.error.message ?? 'stream error'));
    const choices = (v.choices ?? []).map((c, index) => ({
      index, role: undefined, content: c.delta?.content ?? undefined, reasoning: undefined,
      toolCalls: [], finishReason: FINISH[c.finish_reason],
    }));
    return [{ id: String(v.id ?? ''), model: String(v.model ?? ''), created: unixSeconds(v.created), choices,
      usage: usage(v.usage) }];
  }

  finish() { return []; }
}

export const adapter = {
  buildRequest(deployment, request) {
    const settings = JSON.parse(deployment.settings || '{}');
    for (const key of Object.keys(settings)) {
      if (key !== 'path') throw fail('internal', `{{name}}: unknown setting \`${key}\``);
    }
    if (request.tools.length > 0) throw fail('unsupported', 'this adapter does not support tools');
    const messages = request.messages.map((m, i) => {
      let content = '';
      for (const part of m.content) {
        if (part.tag !== 'text') throw fail('invalid-request', `messages[${i}]: only text is supported`);
        content += part.val;
      }
      return { role: ROLES[m.role], content };
    });
    const body = { model: deployment.modelId, messages, stream: request.stream };
    const s = request.sampling;
    if (s.maxTokens !== undefined) body.max_tokens = s.maxTokens;
    if (s.temperature !== undefined) body.temperature = s.temperature;
    if (s.stop.length > 0) body.stop = s.stop;
    // Usage in the last chunk, so the gateway bills what the server counted.
    if (request.stream) body.stream_options = { include_usage: true };
    return {
      method: 'POST',
      path: settings.path ?? '/chat/completions',
      headers: [{ name: 'content-type', value: new TextEncoder().encode('application/json') }],
      body: new TextEncoder().encode(JSON.stringify(body)),
      credential: { tag: 'bearer' },
      streaming: request.stream ? 'sse' : undefined,
    };
  },

  parseResponse(deployment, response) {
    if (response.status < 200 || response.status >= 300) {
      let message = `the upstream answered with HTTP status ${response.status}`;
      try {
        message = String(JSON.parse(new TextDecoder().decode(response.body)).error.message ?? message);
      } catch { /* not JSON: keep the status line */ }
      throw fail('upstream-error', message);
    }
    const v = readObject(response.body, 'response');
    if (!Array.isArray(v.choices)) throw fail('bad-upstream-response', 'no `choices`');
    const choices = v.choices.map((c, index) => ({
      index,
      message: { role: 'assistant', content: [{ tag: 'text', val: c.message?.content ?? '' }],
        name: undefined, toolCalls: [], toolCallId: undefined, reasoning: undefined },
      finishReason: FINISH[c.finish_reason],
    }));
    return { id: String(v.id ?? ''), model: String(v.model ?? ''), created: unixSeconds(v.created), choices,
      usage: usage(v.usage), extra: '' };
  },

  StreamDecoder,
};
