import { status } from '@grpc/grpc-js';
import type { Chunk__Output } from '../../proto/generated/infobound/v1/Chunk.js';
import { allGatherOrigin, allGatherPhases, allReducePhases, allReduceSegment, predecessorOf } from './ring-plan.js';

/**
 * Why a chunk was refused, and the gRPC status the call is ended with: UNAUTHENTICATED for a caller
 * without the job's peer credential, FAILED_PRECONDITION for
 * traffic of another generation or a finished step (the sender is behind or replaying),
 * PERMISSION_DENIED for a sender that is not the ring predecessor, INVALID_ARGUMENT for a chunk that
 * does not fit the ring schedule or its segment, RESOURCE_EXHAUSTED when the buffer of early chunks is
 * full or a message is over the size limit.
 */
export const REFUSAL_STATUS = {
  /** A call without the job's peer credential (checked before any chunk: the caller is no member). */
  credential: status.UNAUTHENTICATED,
  /** Another generation than the receiver's (or the receiver has no membership yet). */
  generation: status.FAILED_PRECONDITION,
  /** A step the receiver has finished, or a segment it already received in full. */
  step: status.FAILED_PRECONDITION,
  /** `from_rank` is not the receiver's ring predecessor. */
  sender: status.PERMISSION_DENIED,
  /** An op that is not a collective (OP_UNSPECIFIED or unknown). */
  op: status.INVALID_ARGUMENT,
  /** A phase outside the op's schedule for this world size. */
  phase: status.INVALID_ARGUMENT,
  /** An element type the op does not carry. */
  dtype: status.INVALID_ARGUMENT,
  /** A segment other than the one the schedule moves in that phase. */
  segment: status.INVALID_ARGUMENT,
  /** A chunk that does not start where the previous one ended. */
  offset: status.INVALID_ARGUMENT,
  /** A payload that is not whole elements, is empty, runs past its segment, or a segment length that changed. */
  size: status.INVALID_ARGUMENT,
  /** Accepting the chunk would exceed the inbox's buffer bound. */
  overflow: status.RESOURCE_EXHAUSTED,
  /** A message over the Peer service's size limit (not parsed). */
  oversized: status.RESOURCE_EXHAUSTED,
  /** A data-plane frame of a type the connection may not send at that point (proto/data-link-frame.ts). */
  frame: status.INVALID_ARGUMENT,
} as const;

/** Reason a chunk was refused (a key of REFUSAL_STATUS). */
export type RefusalReason = keyof typeof REFUSAL_STATUS;

/** A refused chunk: the counted reason and the status details sent to the sender. */
export interface Refusal {
  reason: RefusalReason;
  message: string;
}

/** What the inbox needs from the call a chunk arrived on. */
export interface ChunkSource {
  /** Acknowledges a chunk once the local reducer has taken it (the sender's flow-control credit). */
  ack(chunk: Chunk__Output): void;
  /** Ends the call with the refusal's status. */
  refuse(refusal: Refusal): void;
}

/** The outcome of offering a chunk: accepted, refused, or of a newer generation than the receiver knows. */
export type OfferVerdict = { kind: 'accepted' } | { kind: 'refused'; refusal: Refusal } | { kind: 'newer' };

/** Which stream of chunks a wait is for: one (step, op, tensor, phase, dtype) segment. */
export interface SlotKey {
  step: number;
  op: 'ALLREDUCE_SUM' | 'ALLGATHER';
  /** Tells apart collectives of one op in one step (RingReducer numbers them). */
  tensor: number;
  phase: number;
  /** ALLGATHER moves a block's row ids (INT32) and values (FLOAT32) as two segments. */
  dtype: 'FLOAT32' | 'INT32';
}

/** The receiver's place in the ring, set by the local reducer for each generation. */
export interface InboxTopology {
  generation: number;
  rank: number;
  world: number;
}

/** Options of a CollectiveInbox. */
export interface InboxOptions {
  /** Bound on bytes accepted but not yet taken by the reducer (chunks that came early); default 256 MiB. */
  maxBufferedBytes?: number;
  /** Bound on segments tracked at once (a segment of an empty tensor buffers no bytes); default 65536. */
  maxSlots?: number;
}

/** The largest segment (elements) a chunk may announce: offsets beyond it are no tensor this trainer holds. */
const MAX_SEGMENT_ELEMENTS = 2 ** 32 - 1;

/** A chunk accepted from a call. */
interface Delivery {
  chunk: Chunk__Output;
  source: ChunkSource;
}

/** One segment's chunks in arrival order. */
interface Slot {
  step: number;
  /** Elements of the segment, from its first chunk; −1 until one arrived. */
  segmentLength: number;
  /** Elements accepted so far (chunks must be contiguous, so this is where the next one starts). */
  accepted: number;
  /** The segment arrived in full: any further chunk for it is a replay. */
  complete: boolean;
  /** Accepted chunks the reducer has not taken yet. */
  queue: Delivery[];
  /** The reducer's pending take, if any. */
  waiter?: { resolve: (chunk: Chunk__Output) => void; reject: (err: Error) => void };
  /** Call of the last chunk taken, to end it when the reducer finds the chunk wrong. */
  lastSource?: ChunkSource;
}

function slotId(k: { step: number; op: string; tensor: number; phase: number; dtype: string }): string {
  return `${k.step}/${k.op}/${k.tensor}/${k.phase}/${k.dtype}`;
}

function refusal(reason: RefusalReason, message: string): OfferVerdict {
  return { kind: 'refused', refusal: { reason, message } };
}

/**
 * The receiving half of the local worker's ring: chunks from the predecessor, checked against the ring
 * schedule of the current generation and the step the local reducer is on, kept per segment until the
 * reducer takes them. Chunks may come early (the predecessor runs a phase or a step ahead): they wait
 * here, bounded in bytes. The reducer takes each segment's chunks in order; taking acknowledges them.
 */
export class CollectiveInbox {
  /** Refused chunks by reason. */
  readonly refused: Record<RefusalReason, number>;
  private readonly maxBufferedBytes: number;
  private readonly maxSlots: number;
  private topology?: InboxTopology;
  /** The step the local reducer is on; chunks of earlier steps are stale. */
  private currentStep = -Infinity;
  private readonly slots = new Map<string, Slot>();
  /** The call the predecessor's latest accepted chunk of this generation came on. */
  private predecessorSource?: ChunkSource;
  private buffered = 0;
  /** Set when the current collective failed: every take rejects with it until the next step begins. */
  private failure?: Error;
  /** Set when the predecessor's call of this generation ended: a take with nothing buffered rejects with it. */
  private lost?: Error;
  private readonly generationWaiters = new Set<() => void>();
  /** Set by close(): every take rejects with it, whatever step or generation comes. */
  private closedError?: Error;

  constructor({ maxBufferedBytes = 256 * 2 ** 20, maxSlots = 65536 }: InboxOptions = {}) {
    this.maxBufferedBytes = maxBufferedBytes;
    this.maxSlots = maxSlots;
    this.refused = Object.fromEntries(Object.keys(REFUSAL_STATUS).map((r) => [r, 0])) as Record<RefusalReason, number>;
  }

  /** Bytes accepted and not yet taken. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** The generation the receiver belongs to, if it has joined one. */
  get generation(): number | undefined {
    return this.topology?.generation;
  }

  /** Enters a generation: everything buffered for the previous one is dropped and its waits rejected. */
  setTopology(topology: InboxTopology): void {
    const changed = this.topology?.generation !== topology.generation;
    this.topology = { ...topology };
    if (!changed) return;
    this.rejectWaiters(new Error(`generation changed to ${topology.generation}`));
    this.dropSlots(() => true);
    this.currentStep = -Infinity;
    this.failure = undefined;
    this.lost = undefined;
    this.predecessorSource = undefined;
    for (const wake of [...this.generationWaiters]) wake();
  }

  /**
   * The local reducer starts a collective of `step`: chunks of earlier steps become stale and are
   * dropped; a step lower than the current one (a retried step) drops everything buffered.
   */
  beginStep(step: number): void {
    this.failure = undefined;
    const back = step < this.currentStep;
    this.currentStep = step;
    this.dropSlots((slot) => back || slot.step < step);
  }

  /** Fails the current collective: pending and later takes reject with `err` until the next step begins. */
  fail(err: Error): void {
    this.failure = err;
    this.rejectWaiters(err);
  }

  /** Stops for good: every take rejects, generation waits end. */
  close(): void {
    this.closedError = new Error('the local peer server is closed');
    this.rejectWaiters(this.closedError);
    for (const wake of [...this.generationWaiters]) wake();
  }

  /** Resolves once the receiver is at `generation` or later, or after `timeoutMs`. */
  whenGeneration(generation: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closedError || (this.topology?.generation ?? -1) >= generation) return resolve();
      const wake = (): void => {
        if (!this.closedError && (this.topology?.generation ?? -1) < generation) return;
        clearTimeout(timer);
        this.generationWaiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        this.generationWaiters.delete(wake);
        resolve();
      }, timeoutMs);
      this.generationWaiters.add(wake);
    });
  }

  /**
   * Checks a chunk against the ring schedule and the reducer's position and keeps it for the reducer.
   * A refused chunk is counted; the caller ends its call with the refusal's status. `newer` means the
   * sender is already in a generation the receiver has not entered: the caller may wait for it
   * (whenGeneration) and offer the chunk again with `allowNewer: false`.
   */
  offer(chunk: Chunk__Output, source: ChunkSource, { allowNewer = true } = {}): OfferVerdict {
    const verdict = this.check(chunk, source, allowNewer);
    if (verdict.kind === 'refused') this.refused[verdict.refusal.reason]++;
    return verdict;
  }

  /**
   * Waits for the next chunk of a segment, in offset order. Taking a chunk acknowledges it to its sender.
   * Rejects at once when the collective failed, or when the predecessor's call ended and nothing is buffered.
   */
  take(key: SlotKey): Promise<Chunk__Output> {
    const failure = this.closedError ?? this.failure;
    if (failure) return Promise.reject(failure);
    const id = slotId(key);
    let slot = this.slots.get(id);
    if (!slot) {
      slot = { step: key.step, segmentLength: -1, accepted: 0, complete: false, queue: [] };
      this.slots.set(id, slot);
    }
    const next = slot.queue.shift();
    if (next) {
      this.buffered -= next.chunk.data.length;
      return Promise.resolve(this.hand(slot, next));
    }
    if (this.lost) return Promise.reject(this.lost);
    if (slot.waiter) return Promise.reject(new Error(`two concurrent takes of segment ${id}`));
    return new Promise((resolve, reject) => {
      slot.waiter = { resolve, reject };
    });
  }

  /** Counts a call refused before any of its chunks reached the inbox (no peer credential). */
  countRefusedCall(reason: RefusalReason): void {
    this.refused[reason]++;
  }

  /**
   * The reducer found a taken chunk wrong (e.g. a segment length that does not match the tensor it
   * reduces): counts the refusal and ends the call the chunk came on.
   */
  refuseTaken(key: SlotKey, refused: Refusal): void {
    this.refused[refused.reason]++;
    this.slots.get(slotId(key))?.lastSource?.refuse(refused);
  }

  /**
   * A call ended (half-closed, cancelled or refused). If it was the one the predecessor's latest chunk
   * of this generation came on, waiting takes reject: nothing more will come on it.
   */
  sourceClosed(source: ChunkSource, how: string): void {
    const topo = this.topology;
    if (!topo || source !== this.predecessorSource) return;
    this.predecessorSource = undefined;
    this.lost = new Error(`the stream from ring predecessor rank ${predecessorOf(topo.rank, topo.world)} ${how}`);
    this.rejectWaiters(this.lost);
  }

  private check(chunk: Chunk__Output, source: ChunkSource, allowNewer: boolean): OfferVerdict {
    const topo = this.topology;
    if (this.closedError) return refusal('generation', 'the receiver is shutting down');
    // A sender may enter a generation moments before its receiver does: worth a wait, not a refusal.
    if (chunk.generation > (topo?.generation ?? -1) && allowNewer) return { kind: 'newer' };
    if (!topo) return refusal('generation', `chunk of generation ${chunk.generation}: the receiver has not joined a generation yet`);
    if (chunk.generation !== topo.generation) {
      return refusal('generation', `chunk of generation ${chunk.generation}, the receiver is in generation ${topo.generation}`);
    }
    const { rank, world } = topo;
    const pred = predecessorOf(rank, world);
    if (chunk.from_rank !== pred) {
      return refusal('sender', `rank ${chunk.from_rank} is not the ring predecessor of rank ${rank} (rank ${pred}) in generation ${topo.generation}`);
    }
    const where = `step ${chunk.step} ${chunk.op} tensor ${chunk.tensor} phase ${chunk.phase}`;
    let phases: number;
    let segment: number;
    let dtypeOk: boolean;
    if (chunk.op === 'ALLREDUCE_SUM') {
      phases = allReducePhases(world);
      segment = chunk.phase < phases ? allReduceSegment(rank, world, chunk.phase) : -1;
      dtypeOk = chunk.dtype === 'FLOAT32';
    } else if (chunk.op === 'ALLGATHER') {
      phases = allGatherPhases(world);
      segment = chunk.phase < phases ? allGatherOrigin(rank, world, chunk.phase) : -1;
      dtypeOk = chunk.dtype === 'FLOAT32' || chunk.dtype === 'INT32';
    } else {
      return refusal('op', `${where}: unknown collective op`);
    }
    if (chunk.phase >= phases) return refusal('phase', `${where}: the op has phases 0..${phases - 1} in a world of ${world}`);
    if (!dtypeOk) return refusal('dtype', `${where}: dtype ${chunk.dtype} is not carried by ${chunk.op}`);
    if (chunk.segment !== segment) return refusal('segment', `${where}: segment ${chunk.segment}, the schedule moves segment ${segment}`);
    if (chunk.step < this.currentStep) return refusal('step', `${where}: the receiver is at step ${this.currentStep}`);
    if (chunk.segment_length > MAX_SEGMENT_ELEMENTS) return refusal('size', `${where}: segment length ${chunk.segment_length} is out of range`);
    const bytes = chunk.data.length;
    if (bytes % 4 !== 0) return refusal('size', `${where}: payload of ${bytes} bytes is not whole 4-byte elements`);
    const n = bytes / 4;

    const id = slotId(chunk);
    const slot = this.slots.get(id);
    if (slot?.complete) return refusal('step', `${where}: segment ${segment} was already received in full (replayed chunk)`);
    const segmentLength = slot && slot.segmentLength >= 0 ? slot.segmentLength : chunk.segment_length;
    if (chunk.segment_length !== segmentLength) {
      return refusal('size', `${where}: segment length ${chunk.segment_length}, earlier chunks said ${segmentLength}`);
    }
    const accepted = slot?.accepted ?? 0;
    if (chunk.offset !== accepted) return refusal('offset', `${where}: chunk at offset ${chunk.offset}, expected ${accepted}`);
    if (n === 0 && segmentLength > 0) return refusal('size', `${where}: empty chunk of a non-empty segment`);
    if (accepted + n > segmentLength) {
      return refusal('size', `${where}: ${n} elements at offset ${accepted} run past the segment's ${segmentLength}`);
    }
    if (!slot && this.slots.size >= this.maxSlots) return refusal('overflow', `${where}: ${this.slots.size} segments already pending`);
    const waiting = slot?.waiter !== undefined && slot.queue.length === 0;
    if (!waiting && this.buffered + bytes > this.maxBufferedBytes) {
      return refusal('overflow', `${where}: ${this.buffered} bytes already buffered (limit ${this.maxBufferedBytes})`);
    }

    const target = slot ?? { step: chunk.step, segmentLength, accepted: 0, complete: false, queue: [] };
    if (!slot) this.slots.set(id, target);
    target.segmentLength = segmentLength;
    target.accepted = accepted + n;
    target.complete = target.accepted === segmentLength;
    this.predecessorSource = source;
    this.lost = undefined;
    const delivery = { chunk, source };
    if (target.waiter) {
      const { resolve } = target.waiter;
      target.waiter = undefined;
      resolve(this.hand(target, delivery));
    } else {
      target.queue.push(delivery);
      this.buffered += bytes;
    }
    return { kind: 'accepted' };
  }

  /** Gives a chunk to the reducer: acknowledges it and remembers its call. */
  private hand(slot: Slot, d: Delivery): Chunk__Output {
    slot.lastSource = d.source;
    d.source.ack(d.chunk);
    return d.chunk;
  }

  private rejectWaiters(err: Error): void {
    for (const slot of this.slots.values()) {
      if (!slot.waiter) continue;
      const { reject } = slot.waiter;
      slot.waiter = undefined;
      reject(err);
    }
  }

  private dropSlots(drop: (slot: Slot) => boolean): void {
    for (const [id, slot] of this.slots) {
      if (!drop(slot)) continue;
      for (const d of slot.queue) this.buffered -= d.chunk.data.length;
      slot.waiter?.reject(new Error(`segment ${id} dropped: the reducer moved on`));
      this.slots.delete(id);
    }
  }
}
