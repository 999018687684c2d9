/** Polling for what the cluster and the operator's programs do in their own time. */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Calls `f` every `everyMs` until it returns something other than undefined or false, and returns
 * that. A throw counts as "not yet"; the last one is in the timeout's message.
 */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(everyMs);
  }
}
