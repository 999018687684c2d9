/**
 * `kubectl apikey migrate`: moves the objects the apiserver stored as an older version of the
 * apikeys.dev CRDs to the storage version (`apikeys.dev/v1`), then drops the older versions from
 * each CRD's `status.storedVersions`, so that a later release may stop serving them. The same as
 * cert-manager's `cmctl upgrade migrate-api-version`.
 *
 * How, for each of the four CRDs whose `status.storedVersions` is not just the storage version:
 * 1. Preflight: every CRD exists and names `v1` as its storage version (else nothing is written).
 * 2. Every object is listed (pages of 500) and written back unchanged with an update (PUT) that
 *    carries its resourceVersion. The apiserver encodes what it writes in the storage version, and
 *    an object already stored as v1 encodes to the same bytes, which the apiserver does not write
 *    again (a no-op: no new resourceVersion, no watch event). Invariants: an object deleted since
 *    the list (404) needs nothing; one changed since the list (409 Conflict) was written after the
 *    storage version became v1, so it is stored as v1 already. An unreachable apiserver, 429 and
 *    5xx are retried (3 attempts, 1 s apart); any other refusal stops the migration, before this
 *    CRD's `storedVersions` is touched. An expired continue token (410) restarts the list.
 * 3. The CRD is read again; if its storage version changed or `storedVersions` gained a version
 *    other than v1 meanwhile, something wrote objects in another version and the command fails
 *    (run it again once the CRDs are stable). Otherwise `status.storedVersions` is set to `["v1"]`
 *    through the customresourcedefinitions/status subresource, with the CRD's resourceVersion.
 *
 * `--dry-run` sends the same writes with `dryRun=All`: the apiserver runs RBAC and admission on
 * each (so a refusal shows up now, not halfway through), and persists nothing.
 * A second run finds `storedVersions` already `["v1"]` and writes nothing.
 */
import { API_VERSION, AUDIENCE_CLAIMS, APIKEYS, DEPLOYMENTS, FEDERATED_CREDENTIALS, GROUP, VERSION } from '../../../api/index.ts';
import { PluginError } from '../../../client/errors.ts';
import type { CommandDef, Invocation } from '../command.ts';
import type { Session } from '../session.ts';
import { text } from '../terminal.ts';

const CRD_GROUP = 'apiextensions.k8s.io';
const CRD_RESOURCE = `customresourcedefinitions.${CRD_GROUP}`;
const crdPath = (name: string) => `/apis/${CRD_GROUP}/v1/customresourcedefinitions/${encodeURIComponent(name)}`;
/** The CRDs migrated, in the order a reader meets them. */
export const MIGRATED_PLURALS = [DEPLOYMENTS, APIKEYS, FEDERATED_CREDENTIALS, AUDIENCE_CLAIMS] as const;
const PAGE_SIZE = 500;
const ATTEMPTS = 3;
const RETRY_DELAY_MS = 1000;

interface Crd {
  metadata: { name: string; resourceVersion?: string };
  spec: { names: { kind: string; plural: string }; versions: { name: string; storage: boolean }[] };
  status?: { storedVersions?: string[] };
}
interface StoredObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
}
interface Counts { rewritten: number; deleted: number; changed: number }

const storageVersion = (crd: Crd) => crd.spec.versions.find((v) => v.storage)?.name;
const stored = (crd: Crd) => crd.status?.storedVersions ?? [];
const isDone = (crd: Crd) => stored(crd).length === 1 && stored(crd)[0] === VERSION;
const statusOf = (err: unknown) => (err as { status?: number }).status;
const transient = (err: unknown) => { const s = statusOf(err); return s === 0 || s === 429 || (s !== undefined && s >= 500); };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withRetries<T>(f: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      if (attempt >= ATTEMPTS || !transient(err)) throw err;
      await sleep(RETRY_DELAY_MS);
    }
  }
}

/** Reads the CRD; a missing one means the operator's CRDs are not (all) installed. */
async function readCrd(s: Session, plural: string): Promise<Crd> {
  const name = `${plural}.${GROUP}`;
  return s.call({
    verb: 'get', resource: CRD_RESOURCE, name,
    notFound: `the CRD ${name} is not installed in the cluster at ${s.cluster.server} (context "${s.cluster.context}"): ` +
      'nothing to migrate; install or upgrade apikey-operator first (helm upgrade, or kubectl apply -f manifests/install/01-crds.yaml)',
  }, (c) => withRetries(() => c.get<Crd>(crdPath(name))));
}

/** Writes every object of the CRD back unchanged, page by page. */
async function rewriteAll(s: Session, crd: Crd, dryRun: boolean): Promise<Counts> {
  const { kind, plural } = crd.spec.names;
  const resource = `${plural}.${GROUP}`;
  const collection = `/apis/${GROUP}/${VERSION}/${plural}`;
  const counts: Counts = { rewritten: 0, deleted: 0, changed: 0 };
  let cont: string | undefined;
  let restarts = 0;
  do {
    const page = await s.call({ verb: 'list', resource }, async (c) => {
      try {
        return await withRetries(() => c.get<{ items: StoredObject[]; metadata: { continue?: string } }>(collection, { limit: PAGE_SIZE, continue: cont }));
      } catch (err) {
        // A continue token outlives etcd's compaction only so long (410 Expired): list again from the
        // start; what was rewritten already is stored as v1, and writing it again is a no-op.
        if (statusOf(err) !== 410 || cont === undefined || ++restarts > ATTEMPTS) throw err;
        cont = undefined;
        return c.get<{ items: StoredObject[]; metadata: { continue?: string } }>(collection, { limit: PAGE_SIZE });
      }
    });
    for (const item of page.items) {
      const { name, namespace } = item.metadata;
      const path = `/apis/${GROUP}/${VERSION}/${namespace ? `namespaces/${encodeURIComponent(namespace)}/` : ''}${plural}/${encodeURIComponent(name)}`;
      const body = { ...item, apiVersion: API_VERSION, kind };
      try {
        await s.call({ verb: 'update', resource, namespace, name },
          async (c) => {
            try {
              await withRetries(() => c.request('PUT', path, { body, query: dryRun ? { dryRun: 'All' } : {} }));
            } catch (err) {
              if (statusOf(err) === 404) { counts.deleted++; return; }
              if (statusOf(err) === 409) { counts.changed++; return; }
              throw err;
            }
            counts.rewritten++;
          });
      } catch (err) {
        throw new PluginError(`${(err as Error).message}; the stored versions of ${crd.metadata.name} were left as they are: run kubectl apikey migrate again once this is fixed`);
      }
    }
    cont = page.metadata.continue || undefined;
  } while (cont);
  return counts;
}

/** Sets the CRD's status.storedVersions to the storage version, unless the CRD changed under the migration. */
async function dropOldVersions(s: Session, before: Crd, dryRun: boolean): Promise<void> {
  const name = before.metadata.name;
  const fresh = await readCrd(s, before.spec.names.plural);
  const added = stored(fresh).filter((v) => !stored(before).includes(v) && v !== VERSION);
  if (storageVersion(fresh) !== VERSION || added.length > 0) {
    throw new PluginError(
      `the CRD ${name} changed during the migration (storage version ${storageVersion(fresh) ?? 'none'}, stored versions ${stored(fresh).join(', ')}): ` +
      'objects may have been written in another version meanwhile, so its storedVersions was left as it is. ' +
      'Let any upgrade of the CRDs finish, then run kubectl apikey migrate again');
  }
  const body = { ...fresh, status: { ...fresh.status, storedVersions: [VERSION] } };
  await s.call({ verb: 'update', resource: `${CRD_RESOURCE}/status`, name },
    (c) => withRetries(() => c.request('PUT', `${crdPath(name)}/status`, { body, query: dryRun ? { dryRun: 'All' } : {} })));
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

async function migrate(inv: Invocation): Promise<number> {
  const dryRun = inv.values['dry-run'] === true;
  const s = await inv.session();
  const target = API_VERSION;
  text(`${dryRun ? 'Dry run (nothing is written): checking' : 'Checking'} the apikeys.dev CRDs of the cluster at ${s.cluster.server} (context "${s.cluster.context}")\n`);
  const crds: Crd[] = [];
  for (const p of MIGRATED_PLURALS) crds.push(await readCrd(s, p));
  for (const crd of crds) {
    if (storageVersion(crd) !== VERSION) {
      throw new PluginError(
        `the CRD ${crd.metadata.name} stores ${storageVersion(crd) ?? 'no version'}, not ${VERSION}: upgrade the CRDs to this release first ` +
        '(helm upgrade, or kubectl apply -f manifests/install/01-crds.yaml), then run kubectl apikey migrate');
    }
  }
  let migrated = 0;
  for (const crd of crds) {
    const name = crd.metadata.name;
    if (isDone(crd)) {
      text(`${name}: stored as ${VERSION} only; nothing to do\n`);
      continue;
    }
    text(`${name}: stored versions [${stored(crd).join(', ')}]; ${dryRun ? 'would rewrite' : 'rewriting'} every ${crd.spec.names.kind} as ${target}\n`);
    const started = performance.now();
    const c = await rewriteAll(s, crd, dryRun);
    await dropOldVersions(s, crd, dryRun);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    text(`${name}: ${dryRun ? 'would rewrite' : 'rewrote'} ${plural(c.rewritten, 'object')}` +
      `${c.changed ? `, ${c.changed} changed by others meanwhile (so already ${VERSION})` : ''}` +
      `${c.deleted ? `, ${c.deleted} deleted meanwhile` : ''} in ${seconds}s; ` +
      `status.storedVersions ${dryRun ? 'would be' : 'is now'} [${VERSION}]\n`);
    migrated++;
  }
  text(dryRun
    ? `Dry run done: ${plural(migrated, 'CRD')} to migrate; the apiserver accepted every write. Run without --dry-run to migrate.\n`
    : migrated === 0
      ? `Nothing to do: every object of the ${crds.length} CRDs is stored as ${target}.\n`
      : `Done: every object of the ${crds.length} CRDs is stored as ${target}; a release that stops serving older versions can be installed.\n`);
  return 0;
}

export const migrateCommand: CommandDef = {
  name: 'migrate',
  summary: 'move stored objects to apikeys.dev/v1 after an upgrade (cluster admin)',
  description: [
    `Rewrite every Deployment, ApiKey, FederatedCredential and AudienceClaim unchanged so that the apiserver`,
    `stores it as ${GROUP}/${VERSION}, then set each CRD's status.storedVersions to [${VERSION}]. Run once after`,
    'upgrading the CRDs to this release; a second run does nothing. Objects are not changed (no new',
    'resourceVersion for those already stored as v1); keys keep their ids and secrets.',
    '',
    'It needs, cluster-wide: get on customresourcedefinitions, update on customresourcedefinitions/status,',
    'list and update on deployments, apikeys, federatedcredentials and audienceclaims (apikeys.dev); the',
    "operator's admission policy lets only its controller and members of system:masters write AudienceClaims.",
  ].join('\n'),
  usage: 'migrate [flags]',
  positionals: { min: 0, max: 0, names: [] },
  flags: [
    { name: 'dry-run', type: 'boolean', help: 'send every write with dryRun=All: checks rights and admission, changes nothing' },
  ],
  examples: [
    '# See what would be migrated, and whether you may',
    'kubectl apikey migrate --dry-run',
    '',
    '# Migrate',
    'kubectl apikey migrate',
  ],
  run: migrate,
};
