import { describe, expect, it } from 'vitest';
import type { KubeClient } from '../kube/client.ts';
import { createLogger } from '../shared/log.ts';
import { KubeReviewer, ReviewRefused, type ReviewOutcome } from './reviews.ts';

/** An apiserver that answers every TokenReview with `status`, and records the specs it was asked. */
function apiserver(status: Record<string, unknown>) {
  const specs: Record<string, unknown>[] = [];
  const client = {
    request: (_method: string, _path: string, opts: { body: { spec: Record<string, unknown> } }) => {
      specs.push(opts.body.spec);
      return Promise.resolve({ status });
    },
  } as unknown as KubeClient;
  return { client, specs };
}

const log = createLogger({ level: 'silent' });
const USER = { username: 'system:serviceaccount:team-a:deployer' };

describe('the TokenReview of a subject token', () => {
  it('names no audience by default: the apiserver\'s own', async () => {
    const { client, specs } = apiserver({ authenticated: true, user: USER });
    expect(await new KubeReviewer({ client, log }).authenticate('t')).toEqual(USER);
    expect(specs).toEqual([{ token: 't' }]);
  });

  it.each<[string, string[] | undefined, boolean]>([
    ['one of ours', ['apikeys.dev/token-server'], true],
    ['none at all (an authenticator that ignores audiences: the token is the apiserver\'s)', undefined, false],
    ['none of ours', ['https://kubernetes.default.svc'], false],
  ])('with audiences, accepts a token whose review names %s: %s', async (_what, audiences, accepted) => {
    const { client, specs } = apiserver({ authenticated: true, user: USER, ...(audiences ? { audiences } : {}) });
    const reviewer = new KubeReviewer({ client, log, audiences: ['other', 'apikeys.dev/token-server'] });
    expect(await reviewer.authenticate('t')).toEqual(accepted ? USER : undefined);
    expect(specs).toEqual([{ token: 't', audiences: ['other', 'apikeys.dev/token-server'] }]);
  });
});

describe('reviews asked for a client address', () => {
  it('share one budget between TokenReviews and SubjectAccessReviews, and refuse a throttled client what is not cached', async () => {
    const outcomes: ReviewOutcome[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const client = {
      request: async () => { await gate; return { status: { authenticated: false } }; },
    } as unknown as KubeClient;
    const reviewer = new KubeReviewer({ client, log, observe: (_k, o) => outcomes.push(o), cache: { maxInFlightPerClient: 2 } });
    const a = reviewer.authenticate('a', { client: 'flooder' });
    const b = reviewer.mayCreate(USER, { namespace: 'n', name: 'd', subresource: 'token' }, { client: 'flooder' });
    await expect(reviewer.authenticate('c', { client: 'flooder' })).rejects.toEqual(new ReviewRefused('busy'));
    await expect(reviewer.authenticate('never-asked', { client: 'other', cachedOnly: true })).rejects.toEqual(new ReviewRefused('throttled'));
    release();
    await Promise.all([a, b]);
    // A denial the cache holds is still answered to a throttled client (the caller decides what that costs it).
    expect(await reviewer.authenticate('a', { client: 'other', cachedOnly: true })).toBeUndefined();
    expect(outcomes).toEqual(['throttled', 'throttled', 'unauthenticated', 'denied', 'cached']);
  });
});
