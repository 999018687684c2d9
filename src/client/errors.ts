/**
 * The errors of the two user interfaces, the kubectl plugin (whose exit codes
 * they carry: 1, the operation failed; 2, the command line was wrong) and the
 * console (which shows them as pages): one clear line for the user, never a
 * stack trace and never a secret. Kubernetes errors are turned into sentences
 * that name what was refused (verb, resource, namespace) and what to try next.
 */
import type { KubeError } from '../kube/client.ts';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure the user can act on; `message` is shown as is after "error: ". */
export class PluginError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = EXIT_FAILURE) {
    super(message);
    this.name = 'PluginError';
    this.exitCode = exitCode;
  }
}

/** A wrong command line: exit code 2, with a pointer to the command's help. */
export class PluginUsageError extends PluginError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'PluginUsageError';
  }
}

/** What the plugin was doing when the API answered, so an error can say what was refused. */
export interface KubeAction {
  /** Kubernetes verb: get, list, create, patch, delete. */
  verb: string;
  /** Resource as kubectl writes it: `apikeys.apikeys.dev`, `secrets`, `events.events.k8s.io`. */
  resource: string;
  namespace?: string;
  name?: string;
  /** What to say when the named object does not exist (default: "<resource> "<name>" not found in ..."). */
  notFound?: string;
}

/** Where the plugin is connected, for errors about reaching or authenticating to the cluster. */
export interface ClusterInfo {
  server: string;
  context: string;
}

function where(a: KubeAction): string {
  return a.namespace ? `in namespace "${a.namespace}"` : 'across all namespaces';
}

function subject(message: string): string {
  const m = /User "([^"]+)"/.exec(message);
  return m ? `you (${m[1]})` : 'you';
}

/**
 * Turns an error from the Kubernetes API into a PluginError. A 404 says the
 * object is missing (in the caller's words, `action.notFound`), or, when the
 * whole API group is missing, that the operator is not installed.
 */
export function kubeFailure(err: unknown, action: KubeAction, cluster: ClusterInfo): PluginError {
  if (!isKubeError(err)) {
    return err instanceof PluginError ? err : new PluginError(oneLine((err as Error).message ?? String(err)));
  }
  const what = `${action.resource}${action.name ? ` "${action.name}"` : ''}`;
  switch (err.status) {
    case 0:
      return new PluginError(
        `cannot reach the Kubernetes API at ${cluster.server} (context "${cluster.context}"): ${causeOf(err.message)}. ` +
        'Is the cluster running, and is this the context you meant? Check with: kubectl config current-context');
    case 401:
      return new PluginError(
        `the Kubernetes API at ${cluster.server} rejected your credentials (401 Unauthorized) for context "${cluster.context}": ` +
        'log in again or renew the token of this context\'s user');
    case 403: {
      // An admission policy's refusal says what is missing; `kubectl auth can-i` would answer yes.
      const denial = admissionDenial(err.message);
      if (denial) return new PluginError(`forbidden: cannot ${action.verb} ${what} ${where(action)}: ${denial}`);
      return new PluginError(
        `forbidden: ${subject(err.message)} may not ${action.verb} ${what} ${where(action)}. ` +
        `Check with: kubectl auth can-i ${action.verb} ${action.resource}${action.namespace ? ` -n ${action.namespace}` : ' -A'}; ` +
        'an admin can grant it with a Role and RoleBinding');
    }
    case 404:
      if (!err.message.includes(' not found')) {
        return new PluginError(
          `the API for ${action.resource} is not installed in the cluster at ${cluster.server}: ` +
          'install apikey-operator first (helm install, or kubectl apply -f manifests/install/)');
      }
      return new PluginError(action.notFound ?? `${what} not found ${where(action)}`);
    default:
      return new PluginError(`cannot ${action.verb} ${what} ${where(action)}: ${oneLine(err.message)} (${err.status} ${err.reason})`);
  }
}

/**
 * The reason an admission policy or webhook gave for refusing a request, from the apiserver's
 * message ("... ValidatingAdmissionPolicy 'p' with binding 'b' denied request: REASON", or
 * "admission webhook \"w\" denied the request: REASON"); undefined for any other refusal (RBAC's).
 */
export function admissionDenial(message: string): string | undefined {
  const m = /(?:ValidatingAdmissionPolicy|admission webhook) .*? denied (?:the )?request: ([\s\S]+)$/.exec(message);
  return m ? oneLine(m[1]!) : undefined;
}

/** A KubeError, recognised without loading the Kubernetes client (see session.ts). */
export function isKubeError(err: unknown): err is KubeError {
  return err instanceof Error && err.name === 'KubeError' && typeof (err as KubeError).status === 'number';
}

/** The part after "cannot reach the Kubernetes API at X: ", e.g. ECONNREFUSED. */
function causeOf(message: string): string {
  const i = message.lastIndexOf(': ');
  return i >= 0 ? message.slice(i + 2) : message;
}

export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
