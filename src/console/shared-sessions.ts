/**
 * Wiring of the in-cluster console's shared sessions: the mounted keys file
 * (keyring.ts), the sign-out list in its ConfigMap (sign-outs.ts), read with
 * the console's own credentials (its ServiceAccount, or --kubeconfig), and
 * the store that seals sessions into their cookies (sealed-sessions.ts).
 */
import { KubeClient } from '../kube/client.ts';
import type { KubeConfigLike } from '../kube/credentials.ts';
import { defaultNamespace } from '../kube/config.ts';
import type { KubeConfig } from '../kube/kubeconfig.ts';
import type { Logger } from '../shared/log.ts';
import type { SharedSessionSettings } from './in-cluster-options.ts';
import { FileKeyring } from './keyring.ts';
import { SealedSessionStore } from './sealed-sessions.ts';
import { Sealer } from './sealed.ts';
import { SignOuts } from './sign-outs.ts';

export interface SharedSessions {
  sealer: Sealer;
  store: SealedSessionStore;
  stop(): Promise<void>;
}

export function startSharedSessions(s: SharedSessionSettings, o: { lifetimeMs: number; log: Logger; kc: KubeConfig & KubeConfigLike }): SharedSessions {
  const keyring = new FileKeyring({ file: s.keysFile, log: o.log });
  const sealer = new Sealer({ keyring });
  const signOuts = new SignOuts({
    client: new KubeClient(o.kc), namespace: s.signOuts.namespace ?? defaultNamespace(o.kc), name: s.signOuts.name, log: o.log,
  });
  signOuts.start();
  const store = new SealedSessionStore({ sealer, signOuts, ttlMs: o.lifetimeMs, idleMs: s.idleMs });
  return {
    sealer, store,
    stop: async () => {
      keyring.close();
      await signOuts.stop();
    },
  };
}
