// Stands in for the gateway's `switchyard:plugin/host` in native tests.
let current = '{}';
export const setConfig = (json) => { current = json; };
export const config = () => current;
export const log = (level, message) => console.error(`[${level}] ${message}`);
export const monotonicNow = () => process.hrtime.bigint();
