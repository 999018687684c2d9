/**
 * Property-based tests (fast-check) of every parser of untrusted input in
 * the token server: token requests (JSON, form, HTTP Basic, and mixes of
 * them), DPoP proofs, external JWTs, /authz and introspection queries, and CEL claims
 * expressions within the CRD's limits. The properties, for any input: no
 * 5xx, no crash (the server answers /healthz after), a bounded time per
 * input, and the reference parser's answer where there is one
 * (URLSearchParams for forms, Buffer's base64 for Basic). An in-process
 * server over real HTTP; test/token-server-properties.test.ts runs the same
 * kind of inputs against the real process.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import fc from 'fast-check';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, TOKEN_EXCHANGE_GRANT, type FederatedCredential } from '../api/index.ts';
import { celBudget, compileClaimsExpression, COST_LIMIT, MAX_CLAIMS_JSON_BYTES } from '../federation/claims-expression.ts';
import { createLogger } from '../shared/log.ts';
import { DEFAULT_ROTATION, planSigningKeys } from '../shared/signing-keys.ts';
import { apiKeyFixture, deploymentObject } from './fixtures.ts';
import { IssuerKeys } from './issuer-keys.ts';
import { startTokenServer, type RunningTokenServer } from './main.ts';
import { MemoryKeyStore } from './memory-key-store.ts';
import { verifyProof } from './dpop-proof.ts';
import { InvalidDpopProof, InvalidRequest } from './oauth-errors.ts';
import { parseBasic, parseForm } from './params.ts';
import type { SubjectReviewer } from './reviews.ts';

const ISSUER = 'http://token-server.test';
const GITHUB = 'https://token.actions.githubusercontent.com';
const AUDIENCE = 'https://airflow.example';
const log = createLogger({ level: 'silent' });
/** Generous: the machine is shared; an input that hung the event loop would take seconds or forever. */
const PER_INPUT_MS = 1000;

const dep = deploymentObject('team-a', 'airflow', { audiences: [AUDIENCE] });
const key = apiKeyFixture(dep, 'ci', { spec: { permissions: ['deploy', 'read'] } });

/** The apiserver's reviews, refusing every token: the exchange's parsing is under test here, not Kubernetes. */
const refuseAll: SubjectReviewer = {
  authenticate: () => Promise.resolve(undefined),
  mayCreate: () => Promise.resolve(false),
};

let server: RunningTokenServer;
let url: string;
let githubKey: CryptoKey;

function credential(name: string, claims: string): FederatedCredential {
  return {
    apiVersion: API_VERSION, kind: 'FederatedCredential',
    metadata: {
      namespace: 'team-a', name, uid: `uid-${name}`, creationTimestamp: new Date('2026-01-01T00:00:00Z'),
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'Deployment', name: 'airflow', uid: dep.metadata.uid! }],
    },
    spec: { deploymentRef: { name: 'airflow' }, issuer: GITHUB, claims },
  };
}

beforeAll(async () => {
  const signingKeys = await planSigningKeys(undefined, DEFAULT_ROTATION);
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  githubKey = privateKey;
  const keySet = createLocalJWKSet({ keys: [{ ...await exportJWK(publicKey), kid: 'gh', alg: 'ES256' }] });
  const store = new MemoryKeyStore({
    deployments: [dep], apiKeys: [key.apiKey], signingKeys,
    federatedCredentials: [
      credential('ci', "claims.repository == 'acme/airflow-dags' && claims.ref.matches('^refs/heads/(main|release-[0-9]+)$')"),
      credential('groups', "claims.groups.exists(g, g == 'deployers')"),
    ],
  });
  const federation = new IssuerKeys({ issuers: new Set([GITHUB]), log, keySets: new Map([[GITHUB, keySet]]) });
  server = await startTokenServer({
    kc: new KubeConfig(), port: 0, metricsPort: 0, host: '127.0.0.1', issuer: ISSUER, audiences: ['https://default.example'],
    operatorNamespace: 'op', namespaces: [], logLevel: 'silent',
  }, {
    store, log, defaultMetrics: false, federation, reviewer: refuseAll,
    // No throttling here: every input must reach its parser.
    limits: { freeFailures: 1e9 }, exchangeLimits: { freeFailures: 1e9 },
  });
  url = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => { await server?.close(); });

interface Answer { status: number; ms: number; body: string }

async function send(path: string, init: RequestInit): Promise<Answer> {
  const started = performance.now();
  const r = await fetch(url + path, init);
  const body = await r.text();
  return { status: r.status, ms: performance.now() - started, body };
}

/** The properties every answer has: a 4xx or 2xx with a JSON body, in bounded time. */
function wellBehaved(a: Answer): void {
  expect(a.status, a.body).toBeLessThan(500);
  expect(a.ms).toBeLessThan(PER_INPUT_MS);
  if (a.status !== 200 || a.body.startsWith('{')) expect(() => JSON.parse(a.body) as unknown).not.toThrow();
}

async function stillUp(): Promise<void> {
  expect((await fetch(`${url}/healthz`)).status).toBe(200);
}

const paramName = fc.oneof(
  fc.constantFrom('grant_type', 'client_id', 'client_secret', 'scope', 'audience', 'resource', 'subject_token', 'subject_token_type',
    'deployment', 'requested_token_type', 'actor_token', 'token', '__proto__', 'constructor'),
  fc.string({ maxLength: 12 }),
);
const paramValue = fc.oneof(
  fc.constantFrom('client_credentials', TOKEN_EXCHANGE_GRANT, key.keyId, key.secret, 'deploy', 'read', AUDIENCE, 'team-a/airflow',
    'urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token', ''),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);
const jsonValue = fc.oneof(paramValue, fc.jsonValue({ maxDepth: 3 }));
const basicHeader = fc.oneof(
  fc.tuple(paramValue, paramValue).map(([id, secret]) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`),
  fc.constant(`Basic ${Buffer.from(`${key.keyId}:${key.secret}`).toString('base64')}`),
  fc.string({ maxLength: 60 }).map((s) => `Basic ${s}`),
  fc.string({ maxLength: 60 }).map((s) => s.replace(/[\r\n\0]/g, '')),
);

describe('the form parser', () => {
  it('agrees with URLSearchParams on every body it accepts, and refuses the rest with invalid_request', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.tuple(paramName, paramValue), { maxLength: 6 }), (bytes, pairs) => {
      // Raw bytes, and a well-formed body of the same pairs, each against the reference.
      for (const body of [Buffer.from(bytes), Buffer.from(new URLSearchParams(pairs).toString())]) {
        let parsed: Record<string, unknown>;
        try {
          parsed = parseForm(body.toString('latin1'));
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidRequest);
          continue;
        }
        // The constructor would drop a leading '?', which a form body does not have: '&' first keeps it.
        const reference = new URLSearchParams(`&${body.toString('utf8')}`);
        expect(Object.keys(parsed).sort()).toEqual([...new Set(reference.keys())].sort());
        for (const name of reference.keys()) {
          const all = reference.getAll(name);
          expect(parsed[name]).toEqual(all.length === 1 ? all[0] : all);
        }
      }
    }), { numRuns: 3000 });
  });

  it('never refuses a body URLSearchParams wrote', () => {
    fc.assert(fc.property(fc.array(fc.tuple(paramName, fc.string({ unit: 'grapheme', maxLength: 30 })), { maxLength: 8 }), (pairs) => {
      expect(() => parseForm(new URLSearchParams(pairs).toString())).not.toThrow();
    }), { numRuns: 2000 });
  });
});

describe('the HTTP Basic parser', () => {
  it('gives back what a client encoded (RFC 6749 2.3.1), with Buffer as the base64 reference', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 40 }), (id, secret) => {
      const encode = (s: string) => new URLSearchParams({ s }).toString().slice(2);
      const header = `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}`;
      expect(parseBasic(header)).toEqual({ id, secret });
    }), { numRuns: 2000 });
  });

  it('never throws, and what it decodes is Buffer\'s base64 reading split at the first colon, form-decoded as URLSearchParams does', () => {
    const b64ish = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 40 }).map((x) => Buffer.from(x).toString('base64')));
    fc.assert(fc.property(b64ish, (s) => {
      const parsed = parseBasic(`Basic ${s}`);
      if (!parsed) return;
      const decoded = Buffer.from(s.trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const formDecode = (x: string) => new URLSearchParams(`a=${x.replaceAll('&', '%26')}`).get('a');
      expect(parsed).toEqual({ id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) });
    }), { numRuns: 3000 });
  });
});

describe('POST /oauth/token with any input', () => {
  it('answers any JSON body, with or without Basic, with a 4xx or a token, never a 5xx', async () => {
    await fc.assert(fc.asyncProperty(fc.dictionary(paramName, jsonValue, { maxKeys: 8 }), fc.option(basicHeader), async (body, authorization) => {
      wellBehaved(await send('/oauth/token', {
        method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: JSON.stringify(body),
      }));
    }), { numRuns: 300 });
    await stillUp();
  });

  it('answers any form body, mixed with Basic and repeated names, never with a 5xx', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(paramName, paramValue), { maxLength: 8 }), fc.option(basicHeader), async (pairs, authorization) => {
      wellBehaved(await send('/oauth/token', {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
        body: new URLSearchParams(pairs).toString(),
      }));
    }), { numRuns: 300 });
    await stillUp();
  });

  it('answers any bytes under any content type, never with a 5xx', async () => {
    const contentType = fc.oneof(
      fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'application/json; charset=utf-8',
        'application/x-www-form-urlencoded; charset=latin1', 'text/plain', 'multipart/form-data; boundary=x'),
      fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
    );
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), contentType, async (bytes, type) => {
      wellBehaved(await send('/oauth/token', { method: 'POST', headers: { 'content-type': type }, body: bytes }));
    }), { numRuns: 300 });
    await stillUp();
  });

  it('answers deeply nested and wide JSON up to the body limit without a 5xx', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 7000 }), fc.constantFrom('[', '{"a":'), async (depth, open) => {
      const close = open === '[' ? ']' : '}';
      wellBehaved(await send('/oauth/token', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"grant_type":${open.repeat(depth)}1${close.repeat(depth)}}`,
      }));
    }), { numRuns: 40 });
  });
});

describe('DPoP proofs with any content', () => {
  const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const tokenUrl = `${ISSUER}/oauth/token`;
  const jwk = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.record({
      kty: fc.constantFrom('EC', 'OKP', 'RSA', 'oct', 'x'), crv: fc.constantFrom('P-256', 'P-384', 'Ed25519', 'X25519', 'x'),
      x: fc.base64String({ maxLength: 60 }), y: fc.base64String({ maxLength: 60 }), n: fc.base64String({ maxLength: 400 }), e: fc.constantFrom('AQAB', ''),
      d: fc.base64String({ maxLength: 40 }),
    }, { requiredKeys: ['kty'] }),
  );
  const header = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.record({
    typ: fc.constantFrom('dpop+jwt', 'JWT', 'DPOP+JWT'), alg: fc.constantFrom('ES256', 'EdDSA', 'RS256', 'PS256', 'none', 'HS256', 'x'), jwk,
    crit: fc.array(fc.string({ maxLength: 5 }), { maxLength: 2 }),
  }, { requiredKeys: ['typ', 'alg'] }));
  const claims = fc.record({
    jti: fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 1 })), htm: fc.constantFrom('POST', 'GET', 'post', ''),
    htu: fc.oneof(fc.constant(tokenUrl), fc.webUrl(), fc.string({ maxLength: 40 })), iat: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 5 })),
    nonce: fc.oneof(fc.string({ maxLength: 40 }), fc.integer()), ath: fc.string({ maxLength: 50 }),
  });
  const anyProof = fc.oneof(
    fc.tuple(header, claims, fc.base64String({ maxLength: 120 })).map(([h, c, sig]) => `${b64(h)}.${b64(c)}.${sig.replace(/=/g, '')}`),
    fc.string({ maxLength: 200 }),
  );

  it('the verifier throws nothing but invalid_dpop_proof, for any proof-shaped or other string', () => {
    fc.assert(fc.property(anyProof, (proof) => {
      try {
        verifyProof(proof, { method: 'POST', url: tokenUrl, nowMs: Date.now() });
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidDpopProof);
      }
    }), { numRuns: 2000 });
  });

  it('the token endpoint answers any DPoP header, validly signed or not, with a 4xx, never a 5xx and never a token', async () => {
    // Signed with node:crypto: jose would refuse to sign some of these claims (a non-finite iat).
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const realJwk = publicKey.export({ format: 'jwk' });
    const signProof = (header: object, payload: unknown) => {
      const input = `${b64(header)}.${b64(payload)}`;
      return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    };
    const signed = fc.tuple(claims, fc.constantFrom('dpop+jwt', 'jwt')).map(([c, typ]) => ({ c, typ }));
    const headerValue = (v: string) => v.replace(/[^\x21-\x7e]/g, '').slice(0, 5000);
    await fc.assert(fc.asyncProperty(fc.oneof(anyProof.map((p) => ({ raw: p })), signed), async (input) => {
      const proof = 'raw' in input ? headerValue(input.raw)
        : signProof({ alg: 'ES256', typ: input.typ, jwk: realJwk }, input.c);
      const a = await send('/oauth/token', {
        method: 'POST', body: 'grant_type=client_credentials',
        headers: {
          'content-type': 'application/x-www-form-urlencoded', dpop: proof,
          authorization: `Basic ${Buffer.from(`${key.keyId}:${key.secret}`).toString('base64')}`,
        },
      });
      wellBehaved(a);
      if (proof !== '') expect(a.status, a.body).toBe(400);
    }), { numRuns: 300 });
    await stillUp();
  });
});

describe('external JWTs in a token exchange', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const exchange = (subjectToken: string) => send('/oauth/token', {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: TOKEN_EXCHANGE_GRANT, subject_token: subjectToken, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', deployment: 'team-a/airflow',
    }).toString(),
  });
  const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

  it('answers any JWT-shaped string claiming the issuer (forged headers, payloads, signatures) without a 5xx, and never with a token', async () => {
    const header = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.record({ alg: fc.constantFrom('ES256', 'none', 'HS256', 'RS256', 'x'), kid: fc.constantFrom('gh', 'x', '') }));
    const payload = fc.record({ iss: fc.constant(GITHUB), sub: fc.string({ maxLength: 30 }), extra: fc.jsonValue({ maxDepth: 3 }) }, { requiredKeys: ['iss'] });
    await fc.assert(fc.asyncProperty(header, payload, fc.string({ maxLength: 90 }), async (h, p, sig) => {
      const a = await exchange(`${b64(h)}.${b64(p)}.${Buffer.from(sig).toString('base64url')}`);
      wellBehaved(a);
      expect(a.status).not.toBe(200);
    }), { numRuns: 200 });
    await stillUp();
  });

  it('answers validly signed tokens with any claims (of any size up to the limit) by the credentials\' rules, in bounded time', async () => {
    const claims = fc.record({
      sub: fc.oneof(fc.string({ maxLength: 40 }), fc.constant('a'.repeat(27) + 'b')),
      repository: fc.oneof(fc.constant('acme/airflow-dags'), fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 2 })),
      ref: fc.oneof(fc.constantFrom('refs/heads/main', 'refs/heads/release-12', 'refs/heads/dev'), fc.string({ unit: 'binary', maxLength: 50 })),
      groups: fc.oneof(fc.array(fc.string({ maxLength: 12 }), { maxLength: 300 }), fc.jsonValue({ maxDepth: 3 })),
      pad: fc.integer({ min: 0, max: MAX_CLAIMS_JSON_BYTES }).map((n) => 'x'.repeat(n)),
    }, { requiredKeys: [] });
    await fc.assert(fc.asyncProperty(claims, async (c) => {
      const payload: JWTPayload = { ...c, iss: GITHUB, aud: ISSUER, iat: now(), exp: now() + 300 };
      const token = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: 'gh' }).sign(githubKey);
      const a = await exchange(token);
      wellBehaved(a);
      // eslint-disable-next-line no-control-regex
      const expectMatch = typeof c.sub === 'string' && c.sub !== '' && token.length <= 12 * 1024 && !/[\x00-\x1f\x7f-\x9f]/.test(c.sub)
        && ((c.repository === 'acme/airflow-dags' && typeof c.ref === 'string' && /^refs\/heads\/(main|release-[0-9]+)$/.test(c.ref))
          || (Array.isArray(c.groups) && c.groups.includes('deployers')));
      // The oracle is the two expressions in plain JavaScript; a subject shaped like a key id is refused too, which no generated one is.
      expect(a.status === 200, `${a.status} ${a.body}`).toBe(expectMatch);
    }), { numRuns: 150 });
  });
});

describe('GET /authz and POST /oauth/introspect with any query', () => {
  const authzParam = fc.oneof(fc.constantFrom('deployment', 'audience', 'permission', 'Deployment', 'permission[]'), fc.string({ maxLength: 10 }));
  const authzValue = fc.oneof(fc.constantFrom('team-a/airflow', AUDIENCE, 'deploy', 'read', 'admin', ''), fc.string({ maxLength: 30 }),
    fc.string({ unit: 'binary', maxLength: 30 }));

  it('answers any query and any Authorization with 200, 400, 401 or 403; a repeated deployment, audience or permission is always 400', async () => {
    const bearer = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 60 }).map((s) => `Bearer ${s.replace(/[\r\n\0]/g, '')}`), basicHeader);
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(authzParam, authzValue), { maxLength: 6 }), bearer, async (pairs, authorization) => {
      const query = new URLSearchParams(pairs);
      const a = await send(`/authz?${query.toString()}`, { headers: authorization ? { authorization } : {} });
      expect([200, 400, 401, 403]).toContain(a.status);
      expect(a.ms).toBeLessThan(PER_INPUT_MS);
      // The reference: URLSearchParams's reading of the same query.
      if (['deployment', 'audience', 'permission'].some((n) => query.getAll(n).length > 1)) expect(a.status).toBe(400);
    }), { numRuns: 400 });
    await stillUp();
  });

  it('answers any raw query string (malformed escapes, any bytes) without a 5xx', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 120 }), async (raw) => {
      const encoded = raw.replace(/[^\x21-\x7e]|#/g, (c) => encodeURIComponent(c));
      const a = await send(`/authz?${encoded}`, { headers: { authorization: 'Bearer x' } });
      expect([400, 401, 403]).toContain(a.status);
    }), { numRuns: 300 });
  });

  it('answers any introspection request without a 5xx, and says active:false for anything but a live token', async () => {
    const authorization = `Basic ${Buffer.from(`${key.keyId}:${key.secret}`).toString('base64')}`;
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.oneof(fc.constant('token'), paramName), paramValue), { maxLength: 5 }), async (pairs) => {
      const a = await send('/oauth/introspect', {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization }, body: new URLSearchParams(pairs).toString(),
      });
      wellBehaved(a);
      if (a.status === 200) expect(JSON.parse(a.body)).toEqual({ active: false });
    }), { numRuns: 300 });
  });
});

/** Random CEL expressions within the CRD's limits (4096 characters), from a grammar that reaches comprehensions, regexes and literals. */
const celExpression = fc.letrec<{ expr: string; list: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('true', 'false', "claims.sub == 'x'", 'claims.ref', "has(claims.groups)", 'size(claims.groups) > 2', 'x', "'abc'", '1', '1.5'),
    fc.tuple(tie('expr'), fc.constantFrom('&&', '||', '==', '!=', '+', '<', 'in'), tie('expr')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(tie('list'), fc.constantFrom('all', 'exists', 'exists_one', 'map', 'filter'), tie('expr')).map(([l, m, e]) => `${l}.${m}(x, ${e})`),
    fc.tuple(tie('expr'), fc.constantFrom('^(a+)+$', 'a|b', '[', '(x*)*y', '.*')).map(([e, re]) => `string(${e}).matches('${re}')`),
    fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([c, a, b]) => `(${c} ? ${a} : ${b})`),
    tie('expr').map((e) => `!${e}`),
  ),
  list: fc.oneof(
    fc.constantFrom('claims.groups', '[1, 2, 3]', "['a', 'b']", 'claims.sub.split(\'\')'),
    fc.array(tie('expr'), { maxLength: 8 }).map((xs) => `[${xs.join(', ')}]`),
  ),
})).expr.filter((e) => e.length <= 4096);

describe('CEL claims expressions within the CRD\'s limits', () => {
  it('compile without throwing, to a cost within the limit or a clear refusal, and evaluate in bounded time within their estimate', () => {
    const claims = fc.record({
      sub: fc.string({ maxLength: 60 }), ref: fc.string({ maxLength: 30 }),
      groups: fc.array(fc.string({ maxLength: 10 }), { maxLength: 100 }),
    });
    fc.assert(fc.property(celExpression, claims, (expression, c) => {
      const started = performance.now();
      const compiled = compileClaimsExpression(expression);
      expect(performance.now() - started).toBeLessThan(PER_INPUT_MS);
      if (!compiled.ok) {
        expect(compiled.error).not.toContain('\n');
        return;
      }
      expect(compiled.cost).toBeLessThanOrEqual(COST_LIMIT);
      const budget = celBudget(compiled.cost);
      const evaluated = performance.now();
      expect(typeof compiled.matches(c, budget)).toBe('boolean');
      expect(performance.now() - evaluated).toBeLessThan(PER_INPUT_MS);
      // Soundness of the estimate: a run never spends more than was estimated.
      expect(budget.remaining, expression).toBeGreaterThanOrEqual(0);
    }), { numRuns: 1500 });
  });
});
