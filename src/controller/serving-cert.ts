/**
 * The token server's serving certificate when no cert-manager and no
 * certificate of the user's own is chosen: the controller (leader only) is
 * its own small CA.
 *
 * - The CA Secret (CA_SECRET, operator namespace, type Opaque) holds `ca.crt`,
 *   every unexpired CA certificate this controller made, newest first, and
 *   `ca.key`, their keys in the same order. A new CA is made when the newest
 *   has a third of its life left; the old one stays in the bundle until it
 *   expires, so clients trust both across the change.
 * - The serving Secret (`--serving-cert-secret`, type kubernetes.io/tls)
 *   holds `tls.crt`, `tls.key` and `ca.crt` for the token Service's DNS
 *   names. It is signed by the newest CA that has been published for at
 *   least CA_PUBLISH_LEAD_MS (so every Pod's mounted bundle has it before a
 *   server presents a certificate it signed), else by the newest, and
 *   renewed when a third of its life is left, when its names change, or when
 *   no CA of the bundle signed it. The token server reloads it from its
 *   mounted volume without a restart (token-server/tls.ts).
 * - The bundle is published as the ConfigMap CA_BUNDLE_CONFIGMAP (key
 *   `ca.crt`) in every watched namespace, as kube-root-ca.crt is, kept
 *   equal to the CA Secret's and re-created when deleted (ca-bundle.ts).
 *
 * Anything unreadable in either Secret (not PEM, a key that does not match)
 * is replaced, never trusted. Writes carry the resourceVersion read, so two
 * writers never both succeed.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { MANAGED_BY, MANAGED_BY_LABEL, type SecretObject } from '../api/index.ts';
import { isNotFound, paths, type KubeClient } from '../kube/client.ts';
import type { Logger } from '../shared/log.ts';
import { issueCertificate, newKeyPem } from '../shared/x509.ts';

export const CA_SECRET = 'apikey-operator-ca';
export const CA_BUNDLE_CONFIGMAP = 'apikey-operator-ca.crt';
export const CA_BUNDLE_KEY = 'ca.crt';
const CA_COMMON_NAME = 'apikey-operator-ca';
/** How long a new CA is in the published bundle before it signs the serving certificate. */
export const CA_PUBLISH_LEAD_MS = 3600_000;
/** Look again at least this often: a Secret deleted or edited by hand is repaired within it. */
export const RECHECK_MS = 5 * 60_000;
/** Backdate notBefore a little: clocks of clients differ. */
const BACKDATE_MS = 5 * 60_000;

export interface ServingCertPolicy {
  /** The kubernetes.io/tls Secret the token server mounts. */
  secretName: string;
  /** DNS names (or IP addresses) the certificate is for: the token Service's. */
  dnsNames: readonly string[];
  validityMs: number;
  caValidityMs: number;
}

export interface CaEntry { cert: X509Certificate; certPem: string; keyPem: string }

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g;
const PEM_KEY = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/g;

const notBefore = (c: X509Certificate) => Date.parse(c.validFrom);
const notAfter = (c: X509Certificate) => Date.parse(c.validTo);
/** When it was made: notBefore is backdated by BACKDATE_MS. */
const issuedAt = (c: X509Certificate) => notBefore(c) + BACKDATE_MS;
/** When a third of its life is left. */
export const renewAt = (c: X509Certificate) => issuedAt(c) + ((notAfter(c) - issuedAt(c)) * 2) / 3;

const decode = (s: SecretObject | undefined, k: string) => (s?.data?.[k] ? Buffer.from(s.data[k], 'base64').toString('utf8') : '');
const encode = (s: string) => Buffer.from(s).toString('base64');

/** The CAs of a CA Secret whose key matches and that are still valid, newest first; anything else is dropped. */
export function readCas(secret: SecretObject | undefined, now: number): CaEntry[] {
  const certs = decode(secret, 'ca.crt').match(PEM_CERT) ?? [];
  const keys = decode(secret, 'ca.key').match(PEM_KEY) ?? [];
  const out: CaEntry[] = [];
  certs.forEach((certPem, i) => {
    try {
      const cert = new X509Certificate(certPem);
      const keyPem = keys[i]!;
      if (cert.ca && cert.checkPrivateKey(createPrivateKey(keyPem)) && notAfter(cert) > now) out.push({ cert, certPem, keyPem });
    } catch { /* unreadable: replaced */ }
  });
  return out.sort((a, b) => notBefore(b.cert) - notBefore(a.cert));
}

/** The CAs to keep: a new one first when there is none or the newest is due for renewal. */
export function planCas(cas: CaEntry[], policy: ServingCertPolicy, now: number): { cas: CaEntry[]; made: boolean } {
  const newest = cas[0];
  if (newest && now < renewAt(newest.cert)) return { cas, made: false };
  const keyPem = newKeyPem();
  const certPem = issueCertificate({
    commonName: `${CA_COMMON_NAME}@${Math.floor(now / 1000)}`, notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + policy.caValidityMs), ca: true,
  }, keyPem);
  return { cas: [{ cert: new X509Certificate(certPem), certPem, keyPem }, ...cas], made: true };
}

/** The CA that signs: the newest one published long enough, else the newest. */
export function signingCa(cas: CaEntry[], now: number): CaEntry {
  return cas.find((c) => now - issuedAt(c.cert) >= CA_PUBLISH_LEAD_MS) ?? cas[0]!;
}

export const bundleOf = (cas: CaEntry[]) => cas.map((c) => c.certPem.endsWith('\n') ? c.certPem : `${c.certPem}\n`).join('');

/** Why the serving certificate must be (re)issued, or undefined to keep it. */
export function servingRenewal(secret: SecretObject | undefined, cas: CaEntry[], policy: ServingCertPolicy, now: number): string | undefined {
  const certPem = decode(secret, 'tls.crt');
  if (!certPem) return 'none yet';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(createPrivateKey(decode(secret, 'tls.key')))) return 'its key does not match';
  } catch {
    return 'unreadable';
  }
  if (!cas.some((c) => cert.checkIssued(c.cert) && cert.verify(c.cert.publicKey))) return 'no CA of the bundle signed it';
  if (now >= renewAt(cert)) return 'a third of its life is left';
  const names = (cert.subjectAltName ?? '').split(', ').map((n) => n.replace(/^(DNS|IP Address):/, '')).sort();
  const wanted = [...policy.dnsNames].map((n) => n.toLowerCase()).sort();
  if (names.join(',') !== wanted.join(',')) return 'its DNS names changed';
  return undefined;
}

export function issueServing(ca: CaEntry, policy: ServingCertPolicy, now: number): { certPem: string; keyPem: string } {
  const keyPem = newKeyPem();
  const certPem = issueCertificate({
    commonName: policy.dnsNames[0] ?? 'apikey-operator-token', notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + policy.validityMs),
    ca: false, altNames: policy.dnsNames,
  }, keyPem, { commonName: ca.cert.subject.replace(/^CN=/, ''), keyPem: ca.keyPem });
  return { certPem, keyPem };
}

export interface ServingCertDeps {
  client: KubeClient;
  namespace: string;
  policy: ServingCertPolicy;
  log: Logger;
  beforeWrite?(): void;
  /** After each pass: the CA bundle to publish. */
  onBundle(bundle: string): void;
}

async function read(client: KubeClient, path: string): Promise<SecretObject | undefined> {
  try {
    return await client.get<SecretObject>(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function write(deps: ServingCertDeps, path: string, old: SecretObject | undefined, body: SecretObject): Promise<void> {
  deps.beforeWrite?.();
  body.metadata = {
    ...body.metadata, namespace: deps.namespace,
    labels: { ...old?.metadata?.labels, [MANAGED_BY_LABEL]: MANAGED_BY }, annotations: old?.metadata?.annotations,
    resourceVersion: old?.metadata?.resourceVersion,
  };
  if (old) await deps.client.replace(path, body);
  else await deps.client.create(paths.collection('', 'v1', 'secrets', deps.namespace), body);
}

/** One pass: CA Secret, then serving Secret; returns ms until the next pass is due. */
export async function reconcileServingCert(deps: ServingCertDeps, now = Date.now()): Promise<number> {
  const { client, namespace, policy, log } = deps;
  const caPath = paths.object('', 'v1', 'secrets', namespace, CA_SECRET);
  const caSecret = await read(client, caPath);
  const kept = readCas(caSecret, now);
  const { cas, made } = planCas(kept, policy, now);
  const bundle = bundleOf(cas);
  if (made || bundle !== decode(caSecret, 'ca.crt')) {
    await write(deps, caPath, caSecret, {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: CA_SECRET }, type: 'Opaque',
      data: { 'ca.crt': encode(bundle), 'ca.key': encode(cas.map((c) => c.keyPem).join('')) },
    });
    log.info({ secret: `${namespace}/${CA_SECRET}`, cas: cas.length, made }, made ? 'made a new serving CA' : 'CA bundle updated');
  }
  const servingPath = paths.object('', 'v1', 'secrets', namespace, policy.secretName);
  const serving = await read(client, servingPath);
  const why = servingRenewal(serving, cas, policy, now);
  const pair = why ? issueServing(signingCa(cas, now), policy, now) : { certPem: decode(serving, 'tls.crt'), keyPem: decode(serving, 'tls.key') };
  if (why || decode(serving, CA_BUNDLE_KEY) !== bundle) {
    await write(deps, servingPath, serving, {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: policy.secretName }, type: 'kubernetes.io/tls',
      data: { 'tls.crt': encode(pair.certPem), 'tls.key': encode(pair.keyPem), [CA_BUNDLE_KEY]: encode(bundle) },
    });
    if (why) {
      log.info({ secret: `${namespace}/${policy.secretName}`, why, dnsNames: policy.dnsNames }, 'issued the token server\'s serving certificate');
    }
  }
  deps.onBundle(bundle);
  const due = [renewAt(cas[0]!.cert), renewAt(new X509Certificate(pair.certPem)), ...cas.map((c) => notAfter(c.cert)),
    // A new CA starts signing once it has been published long enough.
    ...cas.map((c) => issuedAt(c.cert) + CA_PUBLISH_LEAD_MS).filter((t) => t > now)];
  return Math.max(1000, Math.min(RECHECK_MS, ...due.map((t) => t - now)));
}
