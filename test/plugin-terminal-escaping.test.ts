/**
 * Issue 18 item 6: whatever the cluster holds, the plugin never writes a
 * terminal control sequence. A tenant who may edit ApiKeys or Deployments
 * (or whose text ends up in a condition message or an event) fills every
 * field the plugin shows with sequences that retitle the window, clear the
 * screen, colour the text, move the cursor back over a line and forge a
 * line of their own; every verb is run as a real process against the real
 * control plane, on a pipe and on a terminal, and must show them escaped,
 * kubectl's way (^[ for ESC, \r for CR), while -o json|yaml|jsonpath|name
 * give the exact bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { ApiKey } from '../src/api/index.ts';
import { API_VERSION } from '../src/api/index.ts';
import { paths } from '../src/kube/client.ts';
import { metaTime } from '../src/kube/types.ts';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { runPlugin, runPluginOnTerminal, type PluginOptions } from './support/plugin.ts';
import { MAIN } from './support/processes.ts';
import { adminClient, apiKeyPath, createDeployment, getApiKey } from './support/resources.ts';
import type { Run } from './support/run.ts';
import { waitFor } from './support/wait.ts';

/** OSC title, clear screen, red, CR over the line, a forged line, an 8-bit CSI, DEL. */
const HOSTILE = '\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\r\nForged: line\u009b1m\x7fend';
/** How it must be shown: escaped, on one line. */
const SHOWN = '^[]0;pwned^G^[[2J^[[31mred^[[0m\\r\\nForged: line\\u009b1m^?end';
const SHORT = '\x1b[2Jk\x1b]0;t\x07';
const SHORT_SHOWN = '^[[2Jk^[]0;t^G';
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LF = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

let ns: TestNamespace;
const plugin = (args: string[], opts: Partial<PluginOptions> = {}) => runPlugin(args, { namespace: ns.name, ...opts });

/** Output meant for a terminal: no control character but line feeds, and no line of the attacker's. */
function expectInert(out: string): void {
  expect(out).not.toMatch(CONTROL_BUT_LF);
  expect(out).not.toMatch(/^Forged/m);
}

function expectBothInert(r: Run): void {
  expectInert(r.stdout);
  expectInert(r.stderr);
}

async function hostileKey(name: string, readyStatus: 'True' | 'False', deployment = 'hostile'): Promise<ApiKey> {
  const c = adminClient();
  await c.create<ApiKey>(apiKeyPath(ns.name), {
    apiVersion: API_VERSION, kind: 'ApiKey', metadata: { name }, spec: { deploymentRef: { name: deployment }, description: HOSTILE },
  });
  return c.mergePatch<ApiKey>(`${apiKeyPath(ns.name, name)}/status`, {
    status: {
      keyId: `ak_${SHORT}`, secretName: `s${SHORT}`,
      conditions: [{ type: 'Ready', status: readyStatus, reason: readyStatus === 'True' ? 'SecretReady' : 'SecretConflict', message: HOSTILE, lastTransitionTime: metaTime() }],
    },
  });
}

beforeAll(async () => {
  ns = await createNamespace('plugin-esc');
  await createDeployment(ns.name, 'hostile', { description: HOSTILE });
  const ak = await hostileKey('hostile', 'False');
  const now = new Date().toISOString().replace('Z', '000Z');
  await adminClient().create(paths.collection('events.k8s.io', 'v1', 'events', ns.name), {
    apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { name: `hostile.${Date.now()}` },
    eventTime: now, reportingController: 'apikeys.dev/test', reportingInstance: 'test', action: 'Test', reason: 'Hostile', type: 'Warning',
    note: HOSTILE, regarding: { apiVersion: API_VERSION, kind: 'ApiKey', name: 'hostile', namespace: ns.name, uid: ak.metadata.uid },
  });
}, 60_000);

afterAll(async () => {
  await ns?.cleanup();
});

describe('every verb escapes what the cluster says', () => {
  it('list: the table, -o wide and -A -o wide', async () => {
    for (const args of [['list'], ['list', '-o', 'wide'], ['list', '-A', '-o', 'wide']]) {
      const r = await plugin(args, args.includes('-A') ? { namespace: false } : {});
      expect(r.code, r.stderr).toBe(0);
      expectBothInert(r);
      expect(r.stdout).toContain('hostile');
      if (args.includes('wide')) expect(r.stdout).toContain(SHOWN);
      expect(r.stdout).toContain(`ak_${SHORT_SHOWN}`);
    }
  });

  it('deployments -o wide', async () => {
    const r = await plugin(['deployments', '-o', 'wide']);
    expect(r.code, r.stderr).toBe(0);
    expectBothInert(r);
    expect(r.stdout).toContain(SHOWN);
  });

  it('describe: the description, the key id, the condition message and the event', async () => {
    const r = await plugin(['describe', 'hostile']);
    expect(r.code, r.stderr).toBe(0);
    expectBothInert(r);
    expect(r.stdout).toMatch(new RegExp(`^Description: +${SHOWN.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}$`, 'm'));
    expect(r.stdout).toContain(`ak_${SHORT_SHOWN}`);
    expect(r.stdout.split(SHOWN).length - 1).toBe(3); // description, condition message, event
  });

  it('token and rotate: the error quoting the condition message', async () => {
    for (const args of [['token', 'hostile', '--token-url', 'http://127.0.0.1:9/oauth/token'], ['rotate', 'hostile']]) {
      const r = await plugin(args);
      expect(r.code).toBe(1);
      expectBothInert(r);
      expect(r.stderr).toMatch(/^error: ApiKey "hostile" is not Ready/);
      expect(r.stderr).toContain(SHOWN);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });

  it('create: the error when the key cannot become Ready quotes the condition message escaped', async () => {
    const pending = plugin(['create', 'hostile-create', '--deployment', 'hostile', '--timeout', '60s']);
    // Play the controller: a terminal condition with a hostile message.
    await waitFor('the ApiKey created by the plugin', () => getApiKey(ns.name, 'hostile-create'), 30_000, 100);
    await adminClient().mergePatch(`${apiKeyPath(ns.name, 'hostile-create')}/status`, {
      status: { conditions: [{ type: 'Ready', status: 'False', reason: 'SecretConflict', message: HOSTILE, lastTransitionTime: metaTime() }] },
    });
    const r = await pending;
    expect(r.code).toBe(1);
    expectBothInert(r);
    expect(r.stderr).toContain(`SecretConflict: ${SHOWN}`);
  });

  it('delete: the confirmation on a terminal, and the line after deleting', async () => {
    await hostileKey('hostile-delete', 'True');
    const asked = await runPluginOnTerminal(['delete', 'hostile-delete'], 'n\n', { namespace: ns.name });
    expect(asked.stdout).toContain(`key id ak_${SHORT_SHOWN}`);
    expect(asked.stdout).toContain(`Secret "s${SHORT_SHOWN}"`);
    expect(asked.stdout).not.toContain('\x1b[2J');
    expect(asked.stdout).not.toContain('\x1b]0;');
    const r = await plugin(['delete', 'hostile-delete', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expectBothInert(r);
    expect(r.stdout).toContain(`Secret "s${SHORT_SHOWN}"`);
  });

  it('the same through apikey-operator', async () => {
    const r = await plugin(['describe', 'hostile'], { program: MAIN });
    expect(r.code, r.stderr).toBe(0);
    expectBothInert(r);
    expect(r.stdout).toContain(SHOWN);
  });
});

describe('machine output stays exact', () => {
  it('-o json, -o yaml and -o jsonpath give the bytes the cluster holds', async () => {
    const json = await plugin(['list', '-o', 'json']);
    const items = (JSON.parse(json.stdout) as { items: ApiKey[] }).items;
    expect(items.find((i) => i.metadata.name === 'hostile')?.spec.description).toBe(HOSTILE);
    const yaml = await plugin(['describe', 'hostile', '-o', 'yaml']);
    const described = parseYaml(yaml.stdout) as { apiKey: ApiKey; events: { message: string }[] };
    expect(described.apiKey.spec.description).toBe(HOSTILE);
    expect(described.events.map((e) => e.message)).toContain(HOSTILE);
    const path = await plugin(['describe', 'hostile', '-o', 'jsonpath={.apiKey.spec.description}']);
    expect(path.stdout).toBe(HOSTILE);
    const deployments = await plugin(['deployments', '-o', 'jsonpath={.items[0].spec.description}']);
    expect(deployments.stdout).toBe(HOSTILE);
  });
});
