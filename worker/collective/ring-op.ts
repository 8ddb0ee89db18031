/**
 * One collective in flight on a RingReducer: its progress clock (every wait inside it has the same
 * deadline, counted from the last chunk received or acknowledged), its count of chunks sent and
 * acknowledged, and its failure, which reaches every wait at once.
 */
export class RingOp {
  /** What the op is waiting for now (peer and phase), for the message of a timeout or an abort. */
  waitingFor = 'the start';
  /** The last phase queued to the successor, for the message of a stream failure. */
  sending = 'nothing yet';
  /** Why the op failed, once it did. */
  error?: Error;
  private sent = 0;
  private acked = 0;
  private lastProgress = performance.now();
  private timer?: NodeJS.Timeout;
  private ackWaiter?: { resolve: () => void; reject: (err: Error) => void };

  constructor(
    /** Names the op, its step and this worker's place, e.g. "all-reduce step 7 (generation 2, rank 1 of 3)". */
    readonly label: string,
    private readonly timeoutMs: number,
    /** Called once with the failure, to reject the op's other waits (inbox takes) and cancel its stream. */
    private readonly onFail: (err: Error) => void,
  ) {
    this.arm(timeoutMs);
  }

  /** Something arrived: the deadline starts over. */
  progress(): void {
    this.lastProgress = performance.now();
  }

  /** A chunk was queued to the successor. */
  sentOne(): void {
    this.sent++;
  }

  /** The successor took one of the op's chunks. */
  ackedOne(): void {
    this.acked++;
    this.progress();
    if (this.acked >= this.sent && this.ackWaiter) {
      this.ackWaiter.resolve();
      this.ackWaiter = undefined;
    }
  }

  /** Resolves once the successor took every chunk sent (so nothing of the caller's buffer is still to be read). */
  allAcked(successor: string): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (this.acked >= this.sent) return Promise.resolve();
    this.waitingFor = `acknowledgement of ${this.sent - this.acked} chunks by ${successor}`;
    return new Promise((resolve, reject) => {
      this.ackWaiter = { resolve, reject };
    });
  }

  /** Fails the op with `err` (the first failure wins) and stops its clock. */
  fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    this.finish();
    this.ackWaiter?.reject(err);
    this.ackWaiter = undefined;
    this.onFail(err);
  }

  /** Stops the clock. */
  finish(): void {
    clearTimeout(this.timer);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      const idle = performance.now() - this.lastProgress;
      if (idle >= this.timeoutMs) this.fail(new Error(`${this.label}: nothing arrived for ${this.timeoutMs} ms while waiting for ${this.waitingFor}`));
      else this.arm(this.timeoutMs - idle);
    }, ms);
  }
}
