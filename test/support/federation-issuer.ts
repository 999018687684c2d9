/**
 * A local OIDC issuer over HTTPS, for the federation tests: a test CA (made
 * with the control plane's openssl runner), a serving certificate for
 * 127.0.0.1 and localhost, a discovery document and a JWKS on loopback, and
 * tokens shaped like GitHub Actions' (repository, ref, workflow,
 * environment, sub `repo:OWNER/REPO:ref:...`), and the runner's side of
 * GitHub's token request (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN), so a
 * workflow step's script can run as it would in a job. It counts every
 * request by path, so a test can prove the token server never contacted it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { makeTestCa } from './test-ca.ts';

/** A test CA with the issuer's serving certificate, in a folder of its own. */
export interface IssuerCa {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  cleanup(): void;
}

export function makeIssuerCa(): IssuerCa {
  const dir = mkdtempSync(join(tmpdir(), 'federation-issuer-'));
  const ca = makeTestCa(dir, 'apikey-operator-federation-test-ca');
  const { certFile, keyFile } = ca.serving('issuer');
  return { dir, caFile: ca.caFile, certFile, keyFile, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Where the runner's token requests go. */
const RUNNER_PATH = '/_apis/idtoken';

export interface GitHubClaims {
  owner?: string;
  repository?: string;
  ref?: string;
  workflow?: string;
  environment?: string;
  aud?: string | string[];
  /** Seconds from now; negative for a token already expired. */
  expiresIn?: number;
  /** Seconds ago the token was issued. */
  issuedAgo?: number;
  sub?: string;
  /** The file name of the workflow in .github/workflows/; default deploy.yml. */
  workflowFile?: string;
}

export interface MintOptions {
  alg?: string;
  kid?: string;
  /** Sign with this key instead of the issuer's. */
  key?: CryptoKey | Uint8Array;
  /** Put this issuer into `iss` instead of the issuer's own. */
  iss?: string;
}

export class TestOidcIssuer {
  readonly url: string;
  readonly kid = `key-${randomUUID().slice(0, 8)}`;
  /** Requests received, by path. */
  readonly requests = new Map<string, number>();
  /** The runner's ACTIONS_ID_TOKEN_REQUEST_TOKEN: the bearer its token requests must carry. */
  readonly runnerRequestToken = randomUUID();
  /** The claims of the tokens the runner endpoint hands out (their aud is the `audience` asked for). */
  runnerClaims: GitHubClaims = {};
  private readonly server: Server;
  private readonly privateKey: CryptoKey;
  readonly publicKeyPem: string;
  private readonly jwk: JWK;

  private constructor(server: Server, url: string, keys: { privateKey: CryptoKey; publicKeyPem: string; jwk: JWK }) {
    this.server = server;
    this.url = url;
    this.privateKey = keys.privateKey;
    this.publicKeyPem = keys.publicKeyPem;
    this.jwk = keys.jwk;
  }

  /** Starts an issuer at https://127.0.0.1:<free port>, serving `ca`'s certificate, signing with RS256 as GitHub does. */
  static async start(ca: IssuerCa): Promise<TestOidcIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...await exportJWK(publicKey), alg: 'RS256', use: 'sig' };
    const publicKeyPem = await exportSPKI(publicKey);
    // The server answers with the issuer's URL, known once it listens.
    const self: { issuer?: TestOidcIssuer } = {};
    const server = createServer({ cert: readFileSync(ca.certFile), key: readFileSync(ca.keyFile) }, (req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      self.issuer!.requests.set(path, (self.issuer!.requests.get(path) ?? 0) + 1);
      const send = (body: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (path === RUNNER_PATH) {
        const issuer = self.issuer!;
        if (req.headers.authorization !== `bearer ${issuer.runnerRequestToken}`) {
          res.writeHead(401).end();
          return;
        }
        const audience = new URL(req.url ?? '/', issuer.url).searchParams.get('audience') ?? undefined;
        issuer.mint(issuer.claims({ ...issuer.runnerClaims, aud: audience })).then((value) => send({ count: 1, value }), () => res.writeHead(500).end());
      } else if (path === '/.well-known/openid-configuration') {
        send({ issuer: self.issuer!.url, jwks_uri: `${self.issuer!.url}/.well-known/jwks`, id_token_signing_alg_values_supported: ['RS256'] });
      } else if (path === '/.well-known/jwks') {
        send({ keys: [{ ...jwk, kid: self.issuer!.kid }] });
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self.issuer = new TestOidcIssuer(server, `https://127.0.0.1:${(server.address() as AddressInfo).port}`, { privateKey, publicKeyPem, jwk });
    return self.issuer;
  }

  /** ACTIONS_ID_TOKEN_REQUEST_URL of a runner of this issuer (with a query already, as GitHub's has). */
  get runnerRequestUrl(): string {
    return `${this.url}${RUNNER_PATH}?api-version=2.0`;
  }

  /** Every request it answered. */
  get requestCount(): number {
    return [...this.requests.values()].reduce((a, b) => a + b, 0);
  }

  /** The claims of a GitHub Actions job token: acme/airflow-dags, main, workflow deploy, environment prod, unless told otherwise. */
  claims(c: GitHubClaims = {}): JWTPayload {
    const owner = c.owner ?? 'acme';
    const repository = c.repository ?? `${owner}/airflow-dags`;
    const ref = c.ref ?? 'refs/heads/main';
    const now = Math.floor(Date.now() / 1000) - (c.issuedAgo ?? 0);
    return {
      jti: randomUUID(),
      sub: c.sub ?? `repo:${repository}:ref:${ref}`,
      aud: c.aud,
      ref,
      sha: 'd6e5f7a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6',
      repository,
      repository_owner: owner,
      repository_visibility: 'private',
      run_id: '7001',
      run_number: '12',
      run_attempt: '1',
      actor: 'octocat',
      workflow: c.workflow ?? 'deploy',
      workflow_ref: `${repository}/.github/workflows/${c.workflowFile ?? 'deploy.yml'}@${ref}`,
      job_workflow_ref: `${repository}/.github/workflows/${c.workflowFile ?? 'deploy.yml'}@${ref}`,
      event_name: 'push',
      ref_type: 'branch',
      environment: c.environment ?? 'prod',
      runner_environment: 'github-hosted',
      iat: now,
      nbf: now - 5,
      exp: now + (c.expiresIn ?? 300) + (c.issuedAgo ?? 0),
    };
  }

  /** A signed token with these claims (iss set to this issuer unless told otherwise). */
  mint(claims: JWTPayload, opts: MintOptions = {}): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: opts.kid ?? this.kid, typ: 'JWT' })
      .setIssuer(opts.iss ?? this.url)
      .sign(opts.key ?? this.privateKey);
  }

  /** A token with `alg: none` and no signature, of this issuer's kid. */
  unsigned(claims: JWTPayload): string {
    const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `${part({ alg: 'none', kid: this.kid, typ: 'JWT' })}.${part({ ...claims, iss: this.url })}.`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
