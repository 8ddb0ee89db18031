import type { Chunk } from '../../proto/generated/infobound/v1/Chunk.js';

/** What the sending half of the ring reports to its owner (RingReducer). */
export interface SuccessorEvents {
  /** The successor's reducer took a chunk. */
  onAck(): void;
  /** The link failed or was ended by the successor; nothing more will be sent or acknowledged. */
  onError(err: Error): void;
}

/**
 * The sending half of the ring for one generation: chunks go to the ring successor in the order given,
 * at most a window of them unacknowledged (the successor acknowledges a chunk when its reducer takes
 * it, so the window bounds what waits in the successor's inbox). Carried by the data plane
 * (DataLinkStream) or by a Collective call (SuccessorStream).
 */
export interface SuccessorLink {
  /** Queues a chunk; it is written when the window allows. Its payload must stay unchanged until acknowledged. */
  send(chunk: Chunk): void;
  /** Closes the link normally; chunks not yet written are dropped. */
  end(): void;
  /** Cuts the link at once (the successor sees it cancelled); queued chunks are dropped. */
  cancel(): void;
}
