import { setTimeout as sleep } from 'node:timers/promises';

/** Options of a {@link Backoff}. */
export interface BackoffOptions {
  /** First delay, ms. @default 100 */
  initialMs?: number;
  /** Largest delay, ms. @default 2000 */
  maxMs?: number;
  /** Growth of the delay after each try. @default 1.6 */
  multiplier?: number;
  /** Fraction of each delay drawn at random either way, so that many workers do not retry in step. @default 0.2 */
  jitter?: number;
}

/**
 * Exponential backoff between retries, as an object (grpc-js's backoff-timeout.ts has the same shape):
 * each {@link wait} sleeps longer than the last, up to a cap, until {@link reset}.
 */
export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly multiplier: number;
  private readonly jitter: number;
  private nextMs: number;

  constructor(o: BackoffOptions = {}) {
    this.initialMs = o.initialMs ?? 100;
    this.maxMs = o.maxMs ?? 2000;
    this.multiplier = o.multiplier ?? 1.6;
    this.jitter = o.jitter ?? 0.2;
    this.nextMs = this.initialMs;
  }

  /** The delay the next {@link wait} sleeps, and grows the one after it. */
  next(): number {
    const base = this.nextMs;
    this.nextMs = Math.min(this.maxMs, base * this.multiplier);
    return base * (1 + this.jitter * (2 * Math.random() - 1));
  }

  /** Sleeps for the next delay. */
  async wait(): Promise<void> {
    await sleep(this.next());
  }

  /** Starts again from the first delay (after a success). */
  reset(): void {
    this.nextMs = this.initialMs;
  }
}
