/**
 * Restarts: the controller killed with SIGKILL mid-burst, the apiserver
 * restarted under a running controller, and two replicas with leader
 * election. Each controller is a real process with the chart's RBAC.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKey, AudienceClaim, SecretObject } from '../src/api/index.ts';
import { isRunning, startApiserver, stopProcess, writeState } from './cluster/controlplane.ts';
import { secretMatchesHash } from '../src/keys/format.ts';
import { clusterState, createNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { startController, type RunningProcess } from './support/processes.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, credentialsOf, deploymentPath, eventsFor, getApiKey, getDeployment, getSecret,
  readyOf, secretPath, uniqueAudience, waitForReady,
} from './support/resources.ts';
import { waitFor } from './support/wait.ts';

// Short enough that a dead leader's lease expires quickly, with a renew deadline that a loaded machine's stalls do not reach.
const FAST_LEASE = ['--leader-elect-lease-duration', '6s', '--leader-elect-renew-deadline', '5s', '--leader-elect-retry-period', '1s'];

let identity: OperatorIdentity;
const procs: RunningProcess[] = [];

beforeAll(async () => {
  identity = await installOperatorIdentity();
});
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop()));
});
afterAll(async () => {
  await identity?.cleanup();
});

async function controller(args: string[] = [], waitReady = true): Promise<RunningProcess> {
  const p = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: [...FAST_LEASE, ...args], waitReady });
  procs.push(p);
  return p;
}

async function snapshot(ns: string): Promise<{ keys: ApiKey[]; secrets: SecretObject[] }> {
  const [keys, secrets] = await Promise.all([
    adminClient().list<ApiKey>(apiKeyPath(ns)),
    adminClient().list<SecretObject>(secretPath(ns), { labelSelector: 'apikeys.dev/apikey' }),
  ]);
  return { keys: keys.items, secrets: secrets.items };
}

describe('a controller killed with SIGKILL in the middle of creating 200 ApiKeys', () => {
  it('leaves, after a restart, exactly one consistent Secret per key and no changed secret', async () => {
    const ns = await createNamespace('burst');
    try {
      await createDeployment(ns.name, 'dep');
      const first = await controller(['--workers', '2']);
      const N = 200;
      const creating = (async () => {
        for (let i = 0; i < N; i += 20) {
          await Promise.all(Array.from({ length: 20 }, (_, j) => createApiKey(ns.name, `k${i + j}`, { deploymentRef: { name: 'dep' } })));
        }
      })();
      // Kill it once some keys are done and others are in flight.
      await waitFor('some keys ready', async () => {
        const { secrets } = await snapshot(ns.name);
        return secrets.length >= 40;
      }, 60_000, 20);
      await first.kill();
      expect(first.isRunning()).toBe(false);
      await creating;
      const atKill = await snapshot(ns.name);
      const hashAtKill = new Map(atKill.keys.map((k) => [k.metadata.name!, k.status?.secretHash]));
      // A secret the key's status named at the kill verified; one it did not (the kill fell between a new
      // key's Secret create and its status write, src/controller/apikey.ts) never verified anywhere.
      const vouched = (s: SecretObject) => secretMatchesHash(credentialsOf(s).secret, hashAtKill.get(s.metadata!.name!));
      const before = new Map(atKill.secrets.filter(vouched).map((s) => [s.metadata!.name!, credentialsOf(s).secret]));
      const unvouched = new Map(atKill.secrets.filter((s) => !vouched(s)).map((s) => [s.metadata!.name!, credentialsOf(s).secret]));
      for (const name of unvouched.keys()) expect(readyOf(atKill.keys.find((k) => k.metadata.name === name))?.status).not.toBe('True');
      const readyBefore = atKill.keys.filter((k) => readyOf(k)?.status === 'True').map((k) => k.metadata.name!);
      expect(readyBefore.length).toBeGreaterThan(0);
      expect(readyBefore.length).toBeLessThan(N);

      await controller(['--workers', '4']);
      const done = await waitFor('all ready', async () => {
        const s = await snapshot(ns.name);
        return s.keys.length === N && s.keys.every((k) => readyOf(k)?.status === 'True') && s.secrets.length === N ? s : undefined;
      }, 120_000, 200);

      const byName = new Map(done.secrets.map((s) => [s.metadata!.name!, s]));
      expect(byName.size).toBe(N);
      for (const key of done.keys) {
        const s = byName.get(key.metadata.name!)!;
        const owners = s.metadata!.ownerReferences!.filter((r) => r.controller);
        expect(owners).toEqual([expect.objectContaining({ uid: key.metadata.uid, kind: 'ApiKey' })]);
        const { keyId, secret } = credentialsOf(s);
        expect(keyId).toBe(key.status!.keyId);
        expect(secretMatchesHash(secret, key.status!.secretHash)).toBe(true);
        expect(key.status!.previousSecretHash).toBeUndefined();
        // Nothing asked for a rotation: a secret that verified at the kill is the secret now; one that
        // never verified is not adopted (invariant 3) but replaced.
        if (before.has(key.metadata.name!)) expect(secret).toBe(before.get(key.metadata.name!));
        if (unvouched.has(key.metadata.name!)) expect(secret).not.toBe(unvouched.get(key.metadata.name!));
      }
      // No key saw a "re-created" or "modified" secret, but those whose Secret no status named at the kill.
      const warnings = await adminClient().list<{ reason: string; regarding: { name: string } }>(`/apis/events.k8s.io/v1/namespaces/${ns.name}/events`);
      expect(warnings.items.filter((e) => e.reason === 'SecretRecreated' || (e.reason === 'SecretModified' && !unvouched.has(e.regarding.name))))
        .toEqual([]);
    } finally {
      await ns.cleanup();
    }
  }, 240_000);
});

describe('an apiserver restarted under a running controller', () => {
  it('is survived: the controller reconnects and reconciles what changed', async () => {
    const ns = await createNamespace('apirestart');
    const state = clusterState();
    const restart = async () => {
      const restarted = await startApiserver(state);
      state.processes = state.processes.map((p) => (p.name === 'kube-apiserver' ? restarted : p));
      writeState(state);
    };
    const apiserver = () => state.processes.find((p) => p.name === 'kube-apiserver')!;
    try {
      await createDeployment(ns.name, 'dep');
      await createApiKey(ns.name, 'before', { deploymentRef: { name: 'dep' } });
      // A leader rides out an apiserver outage shorter than its renew deadline (default 10 s). The
      // outage here is 3 s plus the apiserver's start, which a loaded machine can stretch: a longer
      // deadline keeps this about reconnecting, not about the lease.
      const ctl = await startController({
        kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace,
        args: ['--leader-elect-lease-duration', '60s', '--leader-elect-renew-deadline', '45s'],
      });
      procs.push(ctl);
      await waitForReady(ns.name, 'before');

      await stopProcess(apiserver(), 0); // SIGKILL: a crash, not a drain
      expect(isRunning(apiserver())).toBe(false);
      await sleep(3_000); // long enough for every watch to fail and back off
      expect(ctl.isRunning()).toBe(true);
      await restart();

      // Changes right after the restart, while the controller's watches are still reconnecting.
      await adminClient().delete(secretPath(ns.name, 'before'));
      await createApiKey(ns.name, 'after', { deploymentRef: { name: 'dep' } });
      await waitForReady(ns.name, 'after', 60_000);
      await waitFor('deleted Secret re-created', async () => {
        const ak = await getApiKey(ns.name, 'before');
        const s = await getSecret(ns.name, 'before');
        return s && ak && secretMatchesHash(credentialsOf(s).secret, ak.status?.secretHash) ? s : undefined;
      }, 60_000);
      expect(ctl.isRunning()).toBe(true);
      expect(ctl.logs()).toMatch(/list\/watch failed; retrying/);
    } finally {
      if (!isRunning(apiserver())) await restart();
      await ns.cleanup();
    }
  }, 180_000);
});

describe('two controller replicas', () => {
  it('let only the leader write, and the other takes over when the leader dies', async () => {
    const ns = await createNamespace('ha');
    try {
      await createDeployment(ns.name, 'dep');
      const a = await controller();
      const aId = await waitFor('A leads', () => Promise.resolve(/"identity":"([^"]+)".*became leader/.exec(a.logs())?.[1]));
      const b = await controller();
      await sleep(1_500);
      expect(b.logs()).not.toMatch(/became leader/);

      await createApiKey(ns.name, 'one', { deploymentRef: { name: 'dep' } });
      await waitForReady(ns.name, 'one');
      const lease = await adminClient().get<{ spec: { holderIdentity: string } }>(
        `/apis/coordination.k8s.io/v1/namespaces/${identity.namespace}/leases/apikey-operator-controller`);
      expect(lease.spec.holderIdentity).toBe(aId);
      const ev1 = await waitFor('event', async () => (await eventsFor(ns.name, 'one')).find((e) => e.reason === 'Created'));
      expect(ev1.reportingInstance).toBe(aId);
      const bMetrics = await (await fetch(`http://127.0.0.1:${b.healthPort}/metrics`)).text();
      expect(bMetrics).not.toMatch(/apikey_operator_reconcile_total\{[^}]*result="ok"[^}]*\} [1-9]/);
      expect(bMetrics).toMatch(/apikey_operator_leader 0/);

      await a.kill();
      const t0 = Date.now();
      await createApiKey(ns.name, 'two', { deploymentRef: { name: 'dep' } });
      await waitForReady(ns.name, 'two', 30_000);
      const bId = /"identity":"([^"]+)".*became leader/.exec(b.logs())?.[1];
      expect(bId).toBeDefined();
      expect(bId).not.toBe(aId);
      const ev2 = await waitFor('event', async () => (await eventsFor(ns.name, 'two')).find((e) => e.reason === 'Created'));
      expect(ev2.reportingInstance).toBe(bId);
      expect(Date.now() - t0).toBeLessThan(15_000);
    } finally {
      await ns.cleanup();
    }
  }, 120_000);

  it('hands the lease over at once on SIGTERM', async () => {
    // A 30 s lease: without the release, B could take over only after it expired.
    const slowLease = ['--leader-elect-lease-duration', '30s', '--leader-elect-renew-deadline', '20s'];
    const a = await controller(slowLease);
    await waitFor('A leads', () => Promise.resolve(/became leader/.test(a.logs())));
    const b = await controller(slowLease);
    const t0 = Date.now();
    await a.stop();
    expect(await a.exited).toBe(0);
    await waitFor('B leads', () => Promise.resolve(/became leader/.test(b.logs())), 20_000);
    // B's next try (every 1 s) finds the lease released.
    expect(Date.now() - t0).toBeLessThan(8_000);
  }, 60_000);
});

describe('audience claims across restarts and fail-over', () => {
  const claimsPath = () => `/apis/apikeys.dev/v1/namespaces/${identity.namespace}/audienceclaims`;
  const holderOf = async (audience: string) =>
    (await adminClient().list<AudienceClaim>(claimsPath())).items.find((c) => c.spec.audience === audience)?.spec.holder.name;
  const reasonOf = async (ns: string, name: string) => readyOf(await getDeployment(ns, name))?.reason;

  it('keep the holder by the time of its claim after a restart and after the leader dies; with no claim yet (an upgrade), the earlier rule\'s holder gets it', async () => {
    const ns = await createNamespace('claims');
    try {
      const X = uniqueAudience('restart');
      // An older Deployment, and a younger one that claims X first.
      await createDeployment(ns.name, 'older', { audiences: [uniqueAudience('older-own')] });
      await sleep(1100);
      await createDeployment(ns.name, 'younger', { audiences: [X] });
      const a = await controller();
      await waitFor('younger holds X', async () => await holderOf(X) === 'younger', 20_000, 100);
      await adminClient().mergePatch(deploymentPath(ns.name, 'older'), { spec: { audiences: [X] } });
      await waitFor('older AudienceConflict', async () => await reasonOf(ns.name, 'older') === 'AudienceConflict', 20_000, 100);

      // A second replica; the leader dies; the new leader decides the same from the claims alone.
      const b = await controller();
      await a.kill();
      await waitFor('B leads', () => Promise.resolve(/became leader/.test(b.logs())), 30_000);
      await adminClient().mergePatch(deploymentPath(ns.name, 'older'), { spec: { description: 'nudge' } });
      await sleep(2000);
      expect(await holderOf(X)).toBe('younger');
      expect(await reasonOf(ns.name, 'older')).toBe('AudienceConflict');
      expect(await reasonOf(ns.name, 'younger')).toBe('Ready');
      await b.stop();

      // An installation from before claims: no claim at all. The restarted controller claims each
      // audience for the first created of its listers, the Deployment the old rule served.
      const Y = uniqueAudience('upgrade');
      await createDeployment(ns.name, 'was-holder', { audiences: [Y] });
      await sleep(1100);
      await createDeployment(ns.name, 'was-conflicted', { audiences: [Y] });
      const c = await controller();
      await waitFor('was-holder holds Y', async () => await holderOf(Y) === 'was-holder', 20_000, 100);
      await waitFor('was-conflicted AudienceConflict', async () => await reasonOf(ns.name, 'was-conflicted') === 'AudienceConflict', 20_000, 100);
      expect(c.logs()).not.toMatch(/"level":"(error|fatal)"/);
    } finally {
      await ns.cleanup();
    }
  }, 120_000);
});
