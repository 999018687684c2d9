/**
 * Capped exponential backoff with jitter, for loops that must never spin
 * against the apiserver: each delay is drawn from the upper half of the
 * current step, so restarts of many watches spread out instead of arriving
 * together, and the step doubles until the cap. The caller resets it once
 * the thing it retries has proved healthy again.
 */
export class Backoff {
  private step: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(baseMs: number, maxMs: number, random: () => number = Math.random) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.random = random;
    this.step = baseMs;
  }

  /** The next delay, in [step/2, step); the step then doubles, up to the cap. */
  next(): number {
    const step = this.step;
    this.step = Math.min(step * 2, this.maxMs);
    return step / 2 + this.random() * (step / 2);
  }

  reset(): void {
    this.step = this.baseMs;
  }
}
