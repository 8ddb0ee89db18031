import * as grpc from '@grpc/grpc-js';
import type { Chunk } from '../../proto/generated/infobound/v1/Chunk.js';
import type { ChunkAck__Output } from '../../proto/generated/infobound/v1/ChunkAck.js';
import type { PeerClient } from '../../proto/generated/infobound/v1/Peer.js';
import type { SuccessorEvents, SuccessorLink } from './successor-link.js';

/**
 * The ring's sending half over gRPC: one long-lived Collective call to the ring successor, at most
 * `window` chunks unacknowledged, and grpc's own write backpressure ('drain') bounding what waits in
 * this process's transport. Used when the successor has no data plane (DataLinkStream falls back to it).
 */
export class SuccessorStream implements SuccessorLink {
  private readonly call: grpc.ClientDuplexStream<Chunk, ChunkAck__Output>;
  private readonly queue: Chunk[] = [];
  private inFlight = 0;
  private blocked = false;
  private done = false;

  constructor(
    client: PeerClient,
    /** Sent with the call: the job's peer credential. */
    metadata: grpc.Metadata,
    /** Most chunks written and not yet acknowledged. */
    private readonly window: number,
    private readonly events: SuccessorEvents,
  ) {
    // No deadline: the call lives for a whole generation (docs/architecture.md §9); each wait on it has its own.
    this.call = client.Collective(metadata);
    this.call.on('data', () => {
      this.inFlight = Math.max(0, this.inFlight - 1);
      this.events.onAck();
      this.pump();
    });
    this.call.on('drain', () => {
      this.blocked = false;
      this.pump();
    });
    this.call.on('error', (err: grpc.ServiceError) => this.finish(new Error(`${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`)));
    this.call.on('end', () => this.finish(new Error('the successor ended the stream')));
  }

  /** Queues a chunk; it is written when the window and the transport allow. */
  send(chunk: Chunk): void {
    if (this.done) return;
    this.queue.push(chunk);
    this.pump();
  }

  /** Half-closes the call (the successor ends it normally); chunks not yet written are dropped. */
  end(): void {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    this.call.end();
  }

  /** Cancels the call at once (the successor sees it cancelled); queued chunks are dropped. */
  cancel(): void {
    this.done = true;
    this.queue.length = 0;
    this.call.cancel();
  }

  private pump(): void {
    while (!this.done && !this.blocked && this.inFlight < this.window && this.queue.length > 0) {
      this.inFlight++;
      if (!this.call.write(this.queue.shift()!)) this.blocked = true;
    }
  }

  private finish(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.events.onError(err);
  }
}
