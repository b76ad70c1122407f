// Maps the host's import specifier to support/host-stub.mjs, so the plugin's own source runs
// under `node --test` unchanged.
import { register } from 'node:module';

register('data:text/javascript,' + encodeURIComponent(`
  export async function resolve(specifier, context, next) {
    if (specifier.startsWith('switchyard:plugin/host')) {
      return { url: ${JSON.stringify(new URL('./host-stub.mjs', import.meta.url).href)}, shortCircuit: true };
    }
    return next(specifier, context);
  }
`));
