/**
 * The token server's one write to an ApiKey itself: the apikeys.dev/compromised annotation
 * (api/compromise.ts), as a JSON merge patch that carries the key's uid, so a key deleted and
 * re-created under the same name is never marked. RBAC gives the token server `patch` on apikeys
 * for this alone, and the chart's token-server-writes admission policy refuses it any other
 * change (spec, labels, other annotations, owner references, finalizers).
 */
import { APIKEYS, FIELD_MANAGER, GROUP, VERSION } from '../../api/index.ts';
import { COMPROMISED_ANNOTATION, compromiseAnnotation, type CompromiseReport } from '../../api/compromise.ts';
import { CONTENT, KubeError, paths, type KubeClient } from '../../kube/client.ts';
import type { Logger } from '../../shared/log.ts';
import type { KeyEntry } from '../keys.ts';

export interface LeakMarker {
  /** Marks the key's secret `report.secretHash` compromised; rejects when the write failed (a key gone since resolves). */
  mark(key: KeyEntry, report: CompromiseReport): Promise<void>;
}

export class KubeLeakMarker implements LeakMarker {
  private readonly client: KubeClient;
  private readonly log: Logger;

  constructor(client: KubeClient, log: Logger) {
    this.client = client;
    this.log = log;
  }

  async mark(key: KeyEntry, report: CompromiseReport): Promise<void> {
    const what = { apiKey: `${key.namespace}/${key.name}`, keyId: key.keyId, source: report.source, url: report.url };
    try {
      await this.client.request('PATCH', paths.object(GROUP, VERSION, APIKEYS, key.namespace, key.name), {
        body: { metadata: { uid: key.uid, annotations: { [COMPROMISED_ANNOTATION]: compromiseAnnotation(report) } } },
        contentType: CONTENT.mergePatch,
        query: { fieldManager: FIELD_MANAGER },
        signal: AbortSignal.timeout(10_000),
      });
      this.log.warn(what, 'API key reported leaked by secret scanning: marked compromised');
    } catch (err) {
      const status = err instanceof KubeError ? err.status : 0;
      // 404 or 409 (another uid): the key is gone or is another key now; nothing to revoke.
      if (status === 404 || status === 409) {
        this.log.info({ ...what, status }, 'API key reported leaked is gone');
        return;
      }
      this.log.error({ ...what, status, err }, 'could not mark a leaked API key compromised');
      throw err;
    }
  }
}
