import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Cuts long synchronous work (evaluation over every site, say) into slices of at most `sliceMs`,
 * yielding to the event loop between them: a cluster member's heartbeat timer and gRPC streams must
 * keep flowing, or the coordinator takes the member for dead (docs/architecture.md §5).
 */
export class TimeSlicer {
  private sliceStart = performance.now();

  /** @param sliceMs longest stretch without a yield, ms; far below any heartbeat timeout. @default 20 */
  constructor(private readonly sliceMs = 20) {}

  /** Yields when the current slice has run its time; call it between units of work. */
  async maybeYield(): Promise<void> {
    if (performance.now() - this.sliceStart < this.sliceMs) return;
    await nextTurn();
    this.sliceStart = performance.now();
  }
}
