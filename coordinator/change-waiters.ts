/** How a waiter of {@link ChangeWaiters.wait} ends when nothing else ends it first. */
export interface WaitOptions {
  /** Milliseconds until the wait gives up with `onTimeout()`'s error; every wait has one. */
  timeoutMs: number;
  /** The error the wait rejects with when `timeoutMs` passes. */
  onTimeout: () => Error;
  /** Aborts the wait (the RPC was cancelled or its client deadline passed), rejecting with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Where the coordinator's blocking RPCs (Join, NextStep, ReportStep) wait for its state to change.
 * Each waiter has a check that runs at once and again after every {@link notify}: it returns the
 * answer (the wait resolves with it), `undefined` (keep waiting) or throws (the wait rejects with
 * that). Re-checking every waiter on every change keeps the conditions in one place, next to the
 * handler that waits, instead of spread over every state transition that might satisfy them; the
 * waiters are at most a few per worker, so the cost is nothing.
 */
export class ChangeWaiters {
  private readonly waiting = new Set<() => void>();

  /**
   * Waits until `check` returns a value. `check` must not change the coordinator's state in a way
   * that needs another notify(): it runs inside notify()'s loop.
   */
  wait<T>(check: () => T | undefined, options: WaitOptions): Promise<T> {
    const { timeoutMs, onTimeout, signal } = options;
    return new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.waiting.delete(evaluate);
        signal?.removeEventListener('abort', onAbort);
      };
      const evaluate = (): void => {
        let value: T | undefined;
        try {
          value = check();
        } catch (err) {
          finish();
          reject(err);
          return;
        }
        if (value !== undefined) {
          finish();
          resolve(value);
        }
      };
      const onAbort = (): void => {
        finish();
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        finish();
        reject(onTimeout());
      }, timeoutMs);
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.add(evaluate);
      evaluate();
    });
  }

  /** Re-runs every waiter's check; call after every change of the state the checks read. */
  notify(): void {
    // A snapshot: a check that settles removes its waiter from the set while we iterate.
    for (const evaluate of [...this.waiting]) evaluate();
  }
}
