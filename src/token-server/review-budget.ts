/**
 * How many Kubernetes reviews (TokenReview, SubjectAccessReview) may be in
 * flight at once: at most `maxInFlight` in all, so a flood cannot queue
 * unbounded work at the apiserver, and at most `maxInFlightPerClient` for
 * one client address, so that one address flooding the token endpoint with
 * distinct bogus tokens cannot take every slot and starve everyone else.
 * A request that joins a review already in flight takes no slot.
 *
 * Both caches of a reviewer (token and access) share one budget.
 */

/** Every slot is taken: the apiserver is asked enough already (503, retry shortly). */
export class CacheFull extends Error {
  constructor() {
    super('too many Kubernetes reviews in flight');
    this.name = 'CacheFull';
  }
}

/** This client address has its whole share in flight (429: it is the one asking too much). */
export class ClientShareFull extends Error {
  constructor() {
    super('too many Kubernetes reviews in flight for this client address');
    this.name = 'ClientShareFull';
  }
}

export interface ReviewBudgetOptions {
  maxInFlight?: number;
  maxInFlightPerClient?: number;
}

export const REVIEW_BUDGET_DEFAULTS = { maxInFlight: 128, maxInFlightPerClient: 16 } as const;

export class ReviewBudget {
  readonly maxInFlight: number;
  readonly maxInFlightPerClient: number;
  private total = 0;
  /** Client address -> reviews in flight; an address leaves the map when its last one ends. */
  private readonly perClient = new Map<string, number>();

  constructor(opts: ReviewBudgetOptions = {}) {
    this.maxInFlight = opts.maxInFlight ?? REVIEW_BUDGET_DEFAULTS.maxInFlight;
    this.maxInFlightPerClient = Math.min(opts.maxInFlightPerClient ?? REVIEW_BUDGET_DEFAULTS.maxInFlightPerClient, this.maxInFlight);
  }

  /** Takes a slot for `client`, or throws ClientShareFull or CacheFull. Every acquire needs one release. */
  acquire(client: string): void {
    const mine = this.perClient.get(client) ?? 0;
    // The client's own share first: a flooding client is told it is the one to slow down.
    if (mine >= this.maxInFlightPerClient) throw new ClientShareFull();
    if (this.total >= this.maxInFlight) throw new CacheFull();
    this.perClient.set(client, mine + 1);
    this.total++;
  }

  release(client: string): void {
    const mine = this.perClient.get(client) ?? 0;
    if (mine <= 1) this.perClient.delete(client);
    else this.perClient.set(client, mine - 1);
    if (this.total > 0) this.total--;
  }

  get inFlight(): number {
    return this.total;
  }

  /** Addresses with a review in flight (bounded by maxInFlight). */
  get clients(): number {
    return this.perClient.size;
  }
}
