import type { Chunk__Output } from '../../proto/generated/infobound/v1/Chunk.js';
import type { ChunkSource, CollectiveInbox } from './collective-inbox.js';

/** How a feed holds back its connection while a chunk waits for the receiver's generation. */
export interface FlowControl {
  pause(): void;
  resume(): void;
}

/**
 * One incoming connection's chunks on their way into the inbox (a Collective call or a data-plane
 * connection): offered in arrival order; a refused chunk ends the connection with its refusal. A chunk
 * of a generation the reducer has not entered yet pauses the connection until it does, bounded by
 * `newerWaitMs` (the sender may enter a generation moments before its receiver); transport flow
 * control holds the sender meanwhile.
 */
export class ChunkFeed {
  private readonly pending: Chunk__Output[] = [];
  private holding = false;
  private done = false;

  constructor(
    private readonly inbox: CollectiveInbox,
    private readonly source: ChunkSource,
    private readonly flow: FlowControl,
    private readonly newerWaitMs: number,
  ) {}

  /** The connection ended or was refused: nothing more is offered. */
  get ended(): boolean {
    return this.done;
  }

  /** Stops the feed; chunks not yet offered are dropped. */
  end(): void {
    this.done = true;
    this.pending.length = 0;
  }

  /** Offers a chunk after those before it. */
  push(chunk: Chunk__Output): void {
    if (this.done) return;
    this.pending.push(chunk);
    this.offerPending();
  }

  private offerPending(): void {
    while (!this.holding && !this.done && this.pending.length > 0) {
      const chunk = this.pending[0]!;
      const verdict = this.inbox.offer(chunk, this.source);
      if (verdict.kind === 'newer') {
        this.holding = true;
        this.flow.pause();
        void this.inbox.whenGeneration(chunk.generation, this.newerWaitMs).then(() => {
          this.holding = false;
          if (this.done) return;
          this.pending.shift();
          const again = this.inbox.offer(chunk, this.source, { allowNewer: false });
          if (again.kind === 'refused') this.source.refuse(again.refusal);
          this.flow.resume();
          this.offerPending();
        });
        return;
      }
      this.pending.shift();
      if (verdict.kind === 'refused') this.source.refuse(verdict.refusal);
    }
  }
}
