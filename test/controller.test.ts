/**
 * The controller on the real control plane (with its garbage collector),
 * running as a process with the chart's ServiceAccount and RBAC.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET_TYPE } from '../src/api/index.ts';
import { base62, isKeyId } from '../src/keys/format.ts';
import { createNamespace, kubectl, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { startController, type RunningProcess } from './support/processes.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, credentialsOf, deploymentPath, eventsFor, getApiKey,
  getSecret, readyOf, secretPath, uniqueAudience, waitForReady,
} from './support/resources.ts';
import { waitFor } from './support/wait.ts';

const AIRFLOW_AUDIENCE = uniqueAudience('airflow');

let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;

beforeAll(async () => {
  ns = await createNamespace('ctl');
  identity = await installOperatorIdentity();
  // Expiry warnings in seconds, so that a key crosses both within a test; the default resync (10h)
  // means only the controller's own requeue at each threshold can bring them.
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: ['--expiry-warnings', '20s,10s'],
  });
});

afterAll(async () => {
  await controller?.stop();
  await identity?.cleanup();
  await ns?.cleanup();
});

describe('an ApiKey of an existing Deployment', () => {
  it('gets a Secret with the contract formats, type, keys, ownerReferences and a status hash of its secret', async () => {
    const dep = await createDeployment(ns.name, 'airflow', { audiences: [AIRFLOW_AUDIENCE] });
    const created = await createApiKey(ns.name, 'ci', { deploymentRef: { name: 'airflow' } });
    const ak = await waitForReady(ns.name, 'ci');
    const secret = (await getSecret(ns.name, 'ci'))!;
    const c = credentialsOf(secret);

    expect(secret.type).toBe(SECRET_TYPE);
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['API_KEY_ID', 'API_KEY_SECRET', 'AUDIENCE', 'TOKEN_URL']);
    expect(isKeyId(c.keyId)).toBe(true);
    expect(c.secret).toMatch(/^aks_[0-9A-Za-z]{43}[0-9A-Za-z]{6}$/);
    // The last six characters really are the CRC-32 of the rest, in base62.
    expect(c.secret.slice(47)).toBe(base62(BigInt(crc32(Buffer.from(c.secret.slice(0, 47), 'ascii'))), 6));
    expect(c.audience).toBe(AIRFLOW_AUDIENCE);
    expect(c.tokenUrl).toBe('http://token.test/oauth/token');

    expect(secret.metadata?.ownerReferences).toEqual([{
      apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', name: 'ci', uid: created.metadata.uid,
      controller: true, blockOwnerDeletion: true,
    }]);
    expect(ak.metadata.ownerReferences).toEqual([
      { apiVersion: 'apikeys.dev/v1', kind: 'Deployment', name: 'airflow', uid: dep.metadata.uid },
    ]);
    expect(ak.status?.keyId).toBe(c.keyId);
    expect(ak.status?.secretHash).toBe(`sha256:${createHash('sha256').update(c.secret).digest('base64url')}`);
    expect(JSON.stringify(ak.status)).not.toContain(c.secret);
    expect(readyOf(ak)).toMatchObject({ status: 'True', reason: 'SecretReady' });
    expect(ak.status?.conditions?.[0]?.observedGeneration).toBe(ak.metadata.generation);

    const events = await waitFor('Created event', async () => {
      const e = await eventsFor(ns.name, 'ci');
      return e.some((x) => x.reason === 'Created') ? e : undefined;
    });
    for (const e of events) expect(e.note).not.toContain(c.secret);

    const dstatus = await waitFor('Deployment status', async () => {
      const d = await adminClient().get<typeof dep>(deploymentPath(ns.name, 'airflow'));
      return d.status?.apiKeys === 1 && readyOf(d)?.status === 'True' ? d : undefined;
    });
    expect(dstatus.status?.observedGeneration).toBe(dstatus.metadata.generation);
  });

  it('shows Deployment, Key ID, Ready, Last Rotation and Age in kubectl get, by short name and category', async () => {
    const r = await kubectl(['get', 'ak', '-n', ns.name]);
    expect(r.stdout.split('\n')[0]).toMatch(/NAME\s+DEPLOYMENT\s+KEY ID\s+READY\s+LAST ROTATION\s+AGE/);
    expect(r.stdout).toMatch(/ci\s+airflow\s+ak_[a-z2-7]{26}\s+True/);
    const cat = await kubectl(['get', 'apikey-operator', '-n', ns.name, '-o', 'name']);
    expect(cat.stdout).toContain('apikey.apikeys.dev/ci');
    expect(cat.stdout).toContain('deployment.apikeys.dev/airflow');
    const akd = await kubectl(['get', 'akdeploy', '-n', ns.name]);
    expect(akd.stdout).toMatch(/airflow\s+1\s+24h\s+True/);
  });

  it('copies the secretTemplate labels and annotations and writes to spec.secretName', async () => {
    await createApiKey(ns.name, 'templated', {
      deploymentRef: { name: 'airflow' }, secretName: 'templated-creds',
      secretTemplate: { labels: { team: 'data' }, annotations: { 'example.com/sync': 'vault' } },
    });
    await waitForReady(ns.name, 'templated');
    const s = (await getSecret(ns.name, 'templated-creds'))!;
    expect(s.metadata?.labels).toMatchObject({ team: 'data', 'app.kubernetes.io/managed-by': 'apikey-operator' });
    expect(s.metadata?.annotations).toMatchObject({ 'example.com/sync': 'vault' });
    expect(await getSecret(ns.name, 'templated')).toBeUndefined();

    // A label someone else put on the Secret is theirs: the controller leaves it.
    await adminClient().mergePatch(secretPath(ns.name, 'templated-creds'), { metadata: { labels: { backup: 'daily' } } });
    // A label and the annotation removed from the template, nothing added: everything the
    // Secret still has is a superset of the new template, and yet it follows, with the same
    // credentials.
    await adminClient().mergePatch(apiKeyPath(ns.name, 'templated'), {
      spec: { secretTemplate: { labels: { team: null }, annotations: { 'example.com/sync': null } } },
    });
    const changed = await waitFor('the Secret to follow the template', async () => {
      const now = (await getSecret(ns.name, 'templated-creds'))!;
      return !('team' in (now.metadata?.labels ?? {})) && !('example.com/sync' in (now.metadata?.annotations ?? {})) ? now : undefined;
    }, 10_000);
    expect(changed.metadata?.labels).toMatchObject({ backup: 'daily', 'app.kubernetes.io/managed-by': 'apikey-operator', 'apikeys.dev/apikey': 'templated' });
    expect(changed.data).toEqual(s.data);
    // And a label added to it is added.
    await adminClient().mergePatch(apiKeyPath(ns.name, 'templated'), { spec: { secretTemplate: { labels: { env: 'prod' } } } });
    await waitFor('the new label', async () => (await getSecret(ns.name, 'templated-creds'))?.metadata?.labels?.env === 'prod', 10_000);
  });
});

describe('deleting a Deployment', () => {
  it('lets the garbage collector delete its ApiKeys and their Secrets, and a re-created Deployment adopts none', async () => {
    const dep = await createDeployment(ns.name, 'doomed');
    await createApiKey(ns.name, 'doomed-key', { deploymentRef: { name: 'doomed' } });
    const wasReady = await waitForReady(ns.name, 'doomed-key');
    const readySince = wasReady.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime;
    expect(await getSecret(ns.name, 'doomed-key')).toBeDefined();

    await adminClient().delete(deploymentPath(ns.name, 'doomed'));
    const again = await createDeployment(ns.name, 'doomed');
    expect(again.metadata.uid).not.toBe(dep.metadata.uid);
    // Until the GC removes it, the old key is never re-parented to the new Deployment, and never
    // becomes Ready again. (Until the controller sees the deletion it may still show the Ready it
    // had: that is no new transition.)
    const deadline = Date.now() + 60_000;
    let sawNotReady = false;
    for (;;) {
      const ak = await getApiKey(ns.name, 'doomed-key');
      if (!ak) break;
      expect(ak.metadata.ownerReferences?.map((r) => r.uid)).not.toContain(again.metadata.uid);
      const ready = ak.status?.conditions?.find((c) => c.type === 'Ready');
      if (ready?.status === 'True') {
        expect(sawNotReady).toBe(false);
        expect(ready.lastTransitionTime).toBe(readySince);
      } else {
        sawNotReady = true;
      }
      if (Date.now() > deadline) throw new Error('the GC did not delete the ApiKey');
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitFor('Secret deleted', async () => (await getSecret(ns.name, 'doomed-key')) === undefined, 60_000);
  });
});

describe('an ApiKey created before its Deployment', () => {
  it('is DeploymentNotFound without a Secret, and becomes Ready as soon as the Deployment exists', async () => {
    await createApiKey(ns.name, 'early', { deploymentRef: { name: 'late' } });
    const waiting = await waitFor('DeploymentNotFound', async () => {
      const ak = await getApiKey(ns.name, 'early');
      return readyOf(ak)?.reason === 'DeploymentNotFound' ? ak : undefined;
    });
    expect(readyOf(waiting)?.status).toBe('False');
    expect(await getSecret(ns.name, 'early')).toBeUndefined();
    const t0 = Date.now();
    await createDeployment(ns.name, 'late');
    // Through the Deployment's watch event: the resync is 10 h away.
    await waitForReady(ns.name, 'early', 15_000);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});

describe('a Secret of the same name that the key does not control', () => {
  it('is left untouched, with Ready=False SecretConflict and a Warning event', async () => {
    const foreign = await adminClient().create<{ metadata: { resourceVersion: string } }>(secretPath(ns.name), {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'taken' }, stringData: { password: 'hunter2' },
    });
    await createApiKey(ns.name, 'taken', { deploymentRef: { name: 'airflow' } });
    const ak = await waitFor('SecretConflict', async () => {
      const a = await getApiKey(ns.name, 'taken');
      return readyOf(a)?.reason === 'SecretConflict' ? a : undefined;
    });
    expect(readyOf(ak)?.status).toBe('False');
    const after = await getSecret(ns.name, 'taken');
    expect(after?.metadata?.resourceVersion).toBe(foreign.metadata.resourceVersion);
    expect(Buffer.from(after!.data!.password!, 'base64').toString()).toBe('hunter2');
    const events = await waitFor('Warning event', async () => {
      const e = await eventsFor(ns.name, 'taken');
      return e.some((x) => x.reason === 'SecretConflict' && x.type === 'Warning') ? e : undefined;
    });
    expect(events.filter((x) => x.reason === 'SecretConflict')).toHaveLength(1);
  });
});

describe('invalid manifests', () => {
  const base = (spec: string) => `apiVersion: apikeys.dev/v1\nkind: ApiKey\nmetadata:\n  name: bad\nspec:\n${spec}`;
  it.each([
    ['a bad duration', base('  deploymentRef: {name: airflow}\n  tokenTTL: 1d\n'), /spec.tokenTTL.*should match/],
    ['a zero token lifetime', base('  deploymentRef: {name: airflow}\n  tokenTTL: 0s\n'), /tokenTTL must be a positive duration/],
    ['a token lifetime above 24h', base('  deploymentRef: {name: airflow}\n  tokenTTL: 25h\n'), /tokenTTL must be at most 24h/],
    ['an unknown permission', base('  deploymentRef: {name: airflow}\n  permissions: [deploy, admin]\n'), /Unsupported value: "admin"/],
    ['a missing deploymentRef', base('  description: x\n'), /deploymentRef: Required value/],
    ['a bad expiresAt', base('  deploymentRef: {name: airflow}\n  expiresAt: tomorrow\n'), /expiresAt/],
    ['a rotation under a minute', base('  deploymentRef: {name: airflow}\n  rotation: {every: 30s}\n'), /at least 1m/],
  ])('rejects %s with a clear message', async (_name, manifest, message) => {
    const r = await kubectl(['apply', '-n', ns.name, '-f', '-'], { input: manifest });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(await getApiKey(ns.name, 'bad')).toBeUndefined();
  });

  it('rejects a changed deploymentRef or secretName, and leaves the key as it was', async () => {
    const ak = (await getApiKey(ns.name, 'ci'))!;
    const moved = await kubectl(['patch', 'apikey', 'ci', '-n', ns.name, '--type=merge', '-p', '{"spec":{"deploymentRef":{"name":"other"}}}']);
    expect(moved.code).not.toBe(0);
    expect(moved.stderr).toContain('deploymentRef is immutable');
    const renamed = await kubectl(['patch', 'apikey', 'ci', '-n', ns.name, '--type=merge', '-p', '{"spec":{"secretName":"elsewhere"}}']);
    expect(renamed.stderr).toContain('secretName is immutable');
    expect((await getApiKey(ns.name, 'ci'))?.metadata.resourceVersion).toBe(ak.metadata.resourceVersion);
  });

  it('rejects a Deployment with a bad maxTokenTTL', async () => {
    const r = await kubectl(['apply', '-n', ns.name, '-f', '-'], {
      input: 'apiVersion: apikeys.dev/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n  maxTokenTTL: 2 hours\n',
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/maxTokenTTL/);
  });
});

describe('rotation', () => {
  it('makes a new secret on a new apikeys.dev/rotate value, keeps the old hash until validUntil, then drops it', async () => {
    await createApiKey(ns.name, 'rotating', { deploymentRef: { name: 'airflow' }, rotation: { gracePeriod: '4s' } }, { 'apikeys.dev/rotate': 'initial' });
    const before = await waitForReady(ns.name, 'rotating');
    const oldCreds = credentialsOf((await getSecret(ns.name, 'rotating'))!);
    expect(before.status?.rotateAnnotation).toBe('initial');
    expect(before.status?.previousSecretHash).toBeUndefined();

    const t0 = Date.now();
    await adminClient().mergePatch(apiKeyPath(ns.name, 'rotating'), { metadata: { annotations: { 'apikeys.dev/rotate': '2026-11-26T12:00:00Z' } } });
    const rotated = await waitFor('rotation', async () => {
      const a = await getApiKey(ns.name, 'rotating');
      return a?.status?.previousSecretHash ? a : undefined;
    });
    const newCreds = credentialsOf((await waitFor('new Secret', async () => {
      const s = await getSecret(ns.name, 'rotating');
      return s && credentialsOf(s).secret !== oldCreds.secret ? s : undefined;
    })));
    expect(newCreds.keyId).toBe(oldCreds.keyId);
    expect(rotated.status?.previousSecretHash).toBe(before.status?.secretHash);
    expect(rotated.status?.secretHash).toBe(`sha256:${createHash('sha256').update(newCreds.secret).digest('base64url')}`);
    const validUntil = Date.parse(rotated.status!.previousSecretValidUntil!);
    expect(validUntil).toBeGreaterThanOrEqual(Math.floor(t0 / 1000) * 1000 + 3_000);
    expect(validUntil).toBeLessThanOrEqual(Date.now() + 4_000);
    await waitFor('Rotated event', async () => (await eventsFor(ns.name, 'rotating')).some((e) => e.reason === 'Rotated'));

    // A second update of the same value does not rotate again.
    await adminClient().mergePatch(apiKeyPath(ns.name, 'rotating'), { metadata: { labels: { touched: 'yes' } } });
    await new Promise((r) => setTimeout(r, 500));
    expect(credentialsOf((await getSecret(ns.name, 'rotating'))!).secret).toBe(newCreds.secret);

    const after = await waitFor('grace over', async () => {
      const a = await getApiKey(ns.name, 'rotating');
      return a && !a.status?.previousSecretHash ? a : undefined;
    }, 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(validUntil);
    expect(after.status?.secretHash).toBe(rotated.status?.secretHash);
  });

  it('rotates on schedule when spec.rotation.every falls due', async () => {
    await createApiKey(ns.name, 'scheduled', { deploymentRef: { name: 'airflow' }, rotation: { every: '1m', gracePeriod: '10s' } });
    const first = await waitForReady(ns.name, 'scheduled');
    const created = Date.parse(first.metadata.creationTimestamp as unknown as string);
    const rotated = await waitFor('scheduled rotation', async () => {
      const a = await getApiKey(ns.name, 'scheduled');
      return a?.status?.lastRotationTime ? a : undefined;
    }, 90_000, 500);
    expect(Date.parse(rotated.status!.lastRotationTime!)).toBeGreaterThanOrEqual(created + 59_000);
    expect(rotated.status?.previousSecretHash).toBe(first.status?.secretHash);
  }, 120_000);

  it('re-creates a Secret deleted by hand with a new secret, and says so in a Warning event', async () => {
    const ak = await waitForReady(ns.name, 'ci');
    const old = credentialsOf((await getSecret(ns.name, 'ci'))!);
    await adminClient().delete(secretPath(ns.name, 'ci'));
    const s = await waitFor('re-created', async () => {
      const x = await getSecret(ns.name, 'ci');
      return x && credentialsOf(x).secret !== old.secret ? x : undefined;
    });
    const fresh = credentialsOf(s);
    expect(fresh.keyId).toBe(old.keyId);
    const now = await waitFor('status follows', async () => {
      const a = await getApiKey(ns.name, 'ci');
      return a?.status?.secretHash !== ak.status?.secretHash ? a : undefined;
    });
    expect(now?.status?.secretHash).toBe(`sha256:${createHash('sha256').update(fresh.secret).digest('base64url')}`);
    const events = await waitFor('event', async () => {
      const e = await eventsFor(ns.name, 'ci');
      return e.find((x) => x.reason === 'SecretRecreated');
    });
    expect(events.type).toBe('Warning');
  });
});

describe('expiry', () => {
  it('sets Ready=False with reason Expired when spec.expiresAt passes', async () => {
    // Far enough ahead that the key is Ready first even on a slow machine (the time is truncated
    // to the second).
    const expiresAt = new Date(Date.now() + 8_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await createApiKey(ns.name, 'expiring', { deploymentRef: { name: 'airflow' }, expiresAt });
    const ready = await waitForReady(ns.name, 'expiring');
    expect(ready.status?.expiresAt).toBe(expiresAt);
    const expired = await waitFor('Expired', async () => {
      const a = await getApiKey(ns.name, 'expiring');
      return readyOf(a)?.reason === 'Expired' ? a : undefined;
    }, 15_000);
    expect(readyOf(expired)?.status).toBe('False');
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expiresAt));
  });
});

describe('expiry warnings', () => {
  const expiringOf = (a: Awaited<ReturnType<typeof getApiKey>>) => a?.status?.conditions?.find((c) => c.type === 'Expiring');

  it('says Expiring=True with a Warning event at each threshold, on time, while Ready stays True until the key expires', async () => {
    const expiresAt = new Date(Math.ceil((Date.now() + 30_000) / 1000) * 1000);
    const at = expiresAt.toISOString().replace(/\.\d+Z$/, 'Z');
    await createApiKey(ns.name, 'warned', { deploymentRef: { name: 'airflow' }, expiresAt: at });
    const ready = await waitForReady(ns.name, 'warned');
    expect(expiringOf(ready)).toMatchObject({ status: 'False', reason: 'ExpiryNotNear', message: `The key expires at ${at}` });

    const first = await waitFor('first warning', async () => {
      const a = await getApiKey(ns.name, 'warned');
      return expiringOf(a)?.status === 'True' ? a : undefined;
    }, 25_000, 100);
    // Not before the threshold: 20 s before expiry (the clock of this machine is the controller's).
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt.getTime() - 20_000);
    expect(expiringOf(first)).toMatchObject({ reason: 'ExpiresSoon', message: expect.stringContaining('less than 20s from now') as unknown });
    expect(readyOf(first)).toMatchObject({ status: 'True', reason: 'SecretReady' });

    const second = await waitFor('second warning', async () => {
      const a = await getApiKey(ns.name, 'warned');
      return expiringOf(a)?.message.includes('less than 10s') ? a : undefined;
    }, 15_000, 100);
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt.getTime() - 10_000);
    expect(readyOf(second)?.status).toBe('True');

    const expired = await waitFor('Expired', async () => {
      const a = await getApiKey(ns.name, 'warned');
      return readyOf(a)?.reason === 'Expired' ? a : undefined;
    }, 15_000, 100);
    expect(expiringOf(expired)).toMatchObject({ status: 'False', reason: 'Expired' });

    // One event per threshold (the apiserver lists events by name, in no order of time).
    const warnings = (await eventsFor(ns.name, 'warned')).filter((e) => e.reason === 'ExpiresSoon');
    expect(warnings.map((e) => [e.type, e.note]).sort()).toEqual([
      ['Warning', `The key expires at ${at}, less than 10s from now; give its users a new key, or move spec.expiresAt`],
      ['Warning', `The key expires at ${at}, less than 20s from now; give its users a new key, or move spec.expiresAt`],
    ]);
  }, 90_000);

  it('drops the condition when spec.expiresAt is removed, with no further warning', async () => {
    const at = new Date(Date.now() + 15_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await createApiKey(ns.name, 'unexpired', { deploymentRef: { name: 'airflow' }, expiresAt: at });
    await waitFor('warned', async () => expiringOf(await getApiKey(ns.name, 'unexpired'))?.status === 'True' || undefined, 20_000);
    await adminClient().mergePatch(apiKeyPath(ns.name, 'unexpired'), { spec: { expiresAt: null } });
    const cleared = await waitFor('cleared', async () => {
      const a = await getApiKey(ns.name, 'unexpired');
      return a && !expiringOf(a) && !a.status?.expiresAt ? a : undefined;
    }, 20_000);
    expect(readyOf(cleared)?.status).toBe('True');
    expect((await eventsFor(ns.name, 'unexpired')).filter((e) => e.reason === 'ExpiresSoon')).toHaveLength(1);
  });

  it('refuses an --expiry-warnings value that is not a list of durations', async () => {
    const r = await startController({
      kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: ['--expiry-warnings', '7d'], waitReady: false,
    });
    expect(await r.exited).toBe(2);
    expect(r.logs()).toContain('--expiry-warnings: "7d" is not a positive duration');
  });
});

describe('the signing keys', () => {
  it('are generated on first start in the operator namespace', async () => {
    const s = (await getSecret(identity.namespace, 'apikey-operator-signing-keys'))!;
    expect(s.type).toBe('apikeys.dev/signing-keys');
    const set = JSON.parse(Buffer.from(s.data!['keys.json']!, 'base64').toString()) as { keys: { alg: string }[] };
    expect(set.keys.map((k) => k.alg)).toEqual(['ES256']);
  });
});

describe('the controller ServiceAccount', () => {
  const as = () => `system:serviceaccount:${identity.namespace}:${identity.controllerServiceAccount}`;
  it.each([
    ['create', 'secrets', 'yes'],
    ['watch', 'apikeys.apikeys.dev', 'yes'],
    ['patch', 'apikeys.apikeys.dev/status', 'yes'],
    ['create', 'apikeys.apikeys.dev', 'no'],
    ['delete', 'deployments.apikeys.dev', 'no'],
    // ConfigMaps: only the CA bundle it publishes (a create cannot be limited to a name in RBAC).
    ['update', 'configmaps/apikey-operator-ca.crt', 'yes'],
    ['update', 'configmaps/kube-root-ca.crt', 'no'],
    ['get', 'configmaps/some-app-config', 'no'],
    ['create', 'pods', 'no'],
    ['delete', 'namespaces', 'no'],
  ])('may %s %s: %s', async (verb, resource, answer) => {
    const r = await kubectl(['auth', 'can-i', verb, resource, '-n', ns.name, '--as', as()]);
    expect(r.stdout.trim()).toBe(answer);
  });

  it('may use the Lease only in the operator namespace', async () => {
    expect((await kubectl(['auth', 'can-i', 'update', 'leases.coordination.k8s.io/apikey-operator-controller', '-n', identity.namespace, '--as', as()])).stdout.trim()).toBe('yes');
    expect((await kubectl(['auth', 'can-i', 'update', 'leases.coordination.k8s.io/apikey-operator-controller', '-n', ns.name, '--as', as()])).stdout.trim()).toBe('no');
  });

  it('never logged a secret', () => {
    expect(controller.logs()).not.toMatch(/aks_[0-9A-Za-z]{49}/);
  });
});
