/**
 * A Pod that uses an API key as a workload does, from inside the cluster:
 * its key comes from the credentials Secret through envFrom (API_KEY_ID,
 * API_KEY_SECRET, TOKEN_URL, AUDIENCE), and it reaches the token server
 * through cluster DNS and the token Service. The test drives it over the
 * apiserver's Pod proxy. TOKEN_URL is https:// (the chart's default): the
 * client verifies the server with the operator's CA bundle, the ConfigMap
 * apikey-operator-ca.crt of its namespace mounted as a volume and read again
 * at each request (as the worker example does), and checks the server's name
 * against the certificate (Node's defaults; nothing turned off):
 *
 * - /token: one token request; the token it gets is kept in memory (it never
 *   leaves the Pod) and the answer is only the status and the OAuth error.
 * - /token-without-ca: the same request trusting only the image's public CAs:
 *   it must fail with the TLS error (the server's certificate is not theirs).
 * - /introspect: introspection of the kept token, authenticated as a second
 *   key (envFrom with the prefix INTROSPECT_), as a resource server would.
 * - /loop/start, /loop/stop, /loop/stats: token requests in a loop, every 100 ms, each on
 *   a new connection (as curl in a shell loop makes them); stats counts the
 *   answered and the failed ones (with why) since the last call.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY } from '../../src/controller/serving-cert.ts';
import { isReady, waitForPod } from './node.ts';

const exec = promisify(execFile);
/** Where the client Pod mounts the operator's CA bundle. */
const CA_DIR = '/etc/apikey-operator-ca';

const CLIENT = `
const fs = require('fs');
const http = require('http');
const https = require('https');
const env = process.env;
const introspectUrl = env.TOKEN_URL.replace(/\\/oauth\\/token$/, '/oauth/introspect');
let token = '';
let loop = { ok: 0, failed: 0, reasons: {} };
let looping = false;

function request(url, headers, body, o = { verifyWithOperatorCa: true }) {
  return new Promise((resolve) => {
    if (new URL(url).protocol !== 'https:') return resolve({ status: 0, json: { error: 'NOT_HTTPS' } });
    let ca;
    try { ca = o.verifyWithOperatorCa ? fs.readFileSync(env.CA_FILE) : undefined; } catch (e) { return resolve({ status: 0, json: { error: e.code } }); }
    const req = https.request(url, { method: 'POST', headers, agent: false, timeout: 3000, ca }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => { let json = {}; try { json = JSON.parse(data); } catch {} resolve({ status: res.statusCode, json }); });
      res.on('error', (e) => resolve({ status: 0, json: { error: e.code || e.message } }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => resolve({ status: 0, json: { error: e.code || e.message } }));
    req.end(body);
  });
}

async function fetchToken(o) {
  const r = await request(env.TOKEN_URL, { 'content-type': 'application/json' }, JSON.stringify({
    client_id: env.API_KEY_ID, client_secret: env.API_KEY_SECRET, audience: env.AUDIENCE, grant_type: 'client_credentials',
  }), o);
  return { status: r.status, error: r.json.error, token: r.json.access_token };
}

async function runLoop() {
  while (looping) {
    const started = Date.now();
    const r = await fetchToken();
    if (r.status === 200 && r.token) loop.ok++;
    else { loop.failed++; const why = r.status + ' ' + (r.error || ''); loop.reasons[why] = (loop.reasons[why] || 0) + 1; }
    await new Promise((d) => setTimeout(d, Math.max(0, 100 - (Date.now() - started))));
  }
}

http.createServer(async (req, res) => {
  const answer = (o) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(o)); };
  if (req.url === '/ready') return answer({});
  if (req.url === '/token') {
    const r = await fetchToken();
    if (r.token) token = r.token;
    return answer({ status: r.status, error: r.error });
  }
  if (req.url === '/token-without-ca') {
    const r = await fetchToken({ verifyWithOperatorCa: false });
    return answer({ status: r.status, error: r.error });
  }
  if (req.url === '/introspect') {
    const basic = Buffer.from(env.INTROSPECT_API_KEY_ID + ':' + env.INTROSPECT_API_KEY_SECRET).toString('base64');
    const r = await request(introspectUrl, { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + basic },
      new URLSearchParams({ token }).toString());
    return answer({ status: r.status, active: r.json.active, error: r.json.error });
  }
  if (req.url === '/loop/start') { if (!looping) { looping = true; runLoop(); } return answer({}); }
  if (req.url === '/loop/stop') { looping = false; return answer({}); }
  if (req.url === '/loop/stats') { const s = loop; loop = { ok: 0, failed: 0, reasons: {} }; return answer(s); }
  res.statusCode = 404;
  answer({});
}).listen(8080);
`;

export interface TokenClient {
  /** One token request: its HTTP status (0: no answer) and OAuth error. */
  token(): Promise<{ status: number; error?: string }>;
  /** One token request trusting only the image's public CAs, not the operator's: status 0 and the TLS error code. */
  tokenWithoutCa(): Promise<{ status: number; error?: string }>;
  /** Introspection of the token the last successful request got. */
  introspect(): Promise<{ status: number; active?: boolean; error?: string }>;
  startLoop(): Promise<void>;
  stopLoop(): Promise<void>;
  /** The loop's counts since the previous call. */
  loopStats(): Promise<LoopStats>;
}

export interface LoopStats { ok: number; failed: number; reasons: Record<string, number> }

/**
 * Starts the Pod (the operator's own image, which has Node.js) with the key
 * of Secret `secret`, the key of `introspectAs` for introspection, and the
 * namespace's CA bundle ConfigMap.
 */
export async function startTokenClient(o: {
  core: CoreV1Api; kubectl: string; kubeconfig: string; namespace: string; name: string; secret: string; introspectAs?: string;
}): Promise<TokenClient> {
  const pod: V1Pod = {
    metadata: { name: o.name, labels: { 'app.kubernetes.io/name': 'token-client' } },
    spec: {
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{
        name: 'client', image: 'apikey-operator:dev', imagePullPolicy: 'Never', command: ['node', '-e', CLIENT],
        env: [{ name: 'CA_FILE', value: `${CA_DIR}/${CA_BUNDLE_KEY}` }],
        envFrom: [
          { secretRef: { name: o.secret } },
          ...o.introspectAs ? [{ prefix: 'INTROSPECT_', secretRef: { name: o.introspectAs } }] : [],
        ],
        volumeMounts: [{ name: 'apikey-operator-ca', mountPath: CA_DIR, readOnly: true }],
        securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 1 },
      }],
      volumes: [{ name: 'apikey-operator-ca', configMap: { name: CA_BUNDLE_CONFIGMAP } }],
    },
  };
  await o.core.createNamespacedPod({ namespace: o.namespace, body: pod });
  await waitForPod(o.core, o.namespace, o.name, isReady);
  const call = async <T>(path: string): Promise<T> => JSON.parse((await exec(o.kubectl, ['--kubeconfig', o.kubeconfig, 'get', '--raw',
    `/api/v1/namespaces/${o.namespace}/pods/${o.name}:8080/proxy/${path}`], { encoding: 'utf8' })).stdout) as T;
  return {
    token: () => call('token'),
    tokenWithoutCa: () => call('token-without-ca'),
    introspect: () => call('introspect'),
    startLoop: () => call('loop/start'),
    stopLoop: () => call('loop/stop'),
    loopStats: () => call('loop/stats'),
  };
}
