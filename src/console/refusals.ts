/**
 * A failed Kubernetes call, in words for the person: what they may not do
 * and where ("you may not create ApiKeys in team-a"), what was not found, or
 * that the cluster cannot be reached. Never a stack trace, never a response
 * body (KubeError messages are redacted already).
 */
import { admissionDenial, isKubeError, oneLine } from '../client/errors.ts';

/** What the console was doing: `create` `ApiKeys` in `team-a`. */
export interface Attempt {
  verb: string;
  /** Plural, as a person says it: ApiKeys, Deployments, Secrets. */
  what: string;
  namespace?: string;
  name?: string;
}

export class Refusal extends Error {
  /** The HTTP status the page is answered with. */
  readonly status: number;
  /** The apiserver's own answer for a refused field (status 422), for the form to show next to it. */
  readonly invalid?: string;
  constructor(status: number, message: string, invalid?: string) {
    super(message);
    this.name = 'Refusal';
    this.status = status;
    this.invalid = invalid;
  }
}

const where = (a: Attempt) => (a.namespace ? `in ${a.namespace}` : 'across all namespaces');

export function refusalOf(err: unknown, a: Attempt): Refusal {
  if (err instanceof Refusal) return err;
  if (!isKubeError(err)) return new Refusal(500, `Could not ${a.verb} ${a.what}: ${oneLine((err as Error).message ?? String(err))}`);
  switch (err.status) {
    case 0:
      return new Refusal(502, `Cannot reach the Kubernetes API: ${oneLine(err.message)}`);
    case 401:
      return new Refusal(401, 'The Kubernetes API no longer accepts your credentials. Sign in again.');
    case 403: {
      const denial = admissionDenial(err.message);
      if (denial) return new Refusal(403, `The cluster refused to ${a.verb} ${a.name ? `"${a.name}"` : a.what}: ${denial}`);
      return new Refusal(403, `You may not ${a.verb} ${a.what} ${where(a)}.`);
    }
    case 404:
      if (!err.message.includes(' not found')) {
        return new Refusal(404, `The cluster does not serve ${a.what}: is apikey-operator installed (its CRDs)?`);
      }
      return new Refusal(404, `${a.name ? `"${a.name}"` : a.what} was not found ${where(a)}.`);
    case 409:
      return new Refusal(409, err.reason === 'AlreadyExists'
        ? `${a.name ? `"${a.name}"` : 'It'} already exists ${where(a)}.`
        : `${a.name ? `"${a.name}"` : 'It'} changed meanwhile; try again.`, err.reason === 'AlreadyExists' ? 'exists' : undefined);
    case 422:
      return new Refusal(422, oneLine(err.message), oneLine(err.message));
    default:
      return new Refusal(err.status >= 500 ? 502 : err.status, `Could not ${a.verb} ${a.what} ${where(a)}: ${oneLine(err.message)}`);
  }
}

/** Runs one call as the person; any failure becomes a Refusal that says what was refused. */
export async function attempt<T>(a: Attempt, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw refusalOf(err, a);
  }
}
