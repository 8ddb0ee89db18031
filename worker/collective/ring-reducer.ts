import * as grpc from '@grpc/grpc-js';
import { endianness } from 'node:os';
import { PeerService } from '../../common/proto.js';
import { UserError } from '../../common/user-error.js';
import type { Chunk, Chunk__Output } from '../../proto/generated/infobound/v1/Chunk.js';
import type { PeerClient } from '../../proto/generated/infobound/v1/Peer.js';
import type { SparseRowGrad } from '../model/sparse-embedding.js';
import type { CollectiveInbox, SlotKey } from './collective-inbox.js';
import type { GradientReducer } from './gradient-reducer.js';
import { PEER_CREDENTIAL_METADATA, type PeerServer } from './peer-server.js';
import { allGatherOrigin, allGatherPhases, allReducePhases, allReduceSegment, predecessorOf, segmentRange, successorOf } from './ring-plan.js';
import { RingOp } from './ring-op.js';
import { rowWidth, rowsMean } from './rows-mean.js';
import { DataLinkStream } from './data-link-stream.js';
import type { SuccessorLink } from './successor-link.js';
import { SuccessorStream } from './successor-stream.js';
import type { ConnectionOptions } from 'node:tls';

/** A worker's place in the ring of one generation (from the coordinator's Membership). */
export interface RingTopology {
  /** Tags every chunk; chunks of another generation are refused. */
  generation: number;
  /** This worker's rank: it sends to rank + 1 and receives from rank − 1 (mod world). */
  rank: number;
  /** Workers in the generation; 1 means no network at all. */
  world: number;
  /** Peer address (host:port) of every rank, in rank order. */
  peers: readonly string[];
  /**
   * The job's peer credential (Membership.peer_credential): every call to the successor carries it,
   * and this worker's Peer server requires it. Absent: calls go without one (collective tests).
   */
  credential?: string;
}

/** Options of a RingReducer. */
export interface RingReducerOptions {
  /** Payload bytes per chunk (a multiple of 4); default 1 MiB, at most 4 MiB − 64 KiB (gRPC's default message limit is 4 MiB). */
  chunkBytes?: number;
  /** Deadline of every wait (a chunk from the predecessor, an acknowledgement from the successor), in ms; default 30000. */
  timeoutMs?: number;
  /** Chunk bytes in flight to the successor and not yet taken by its reducer; default 8 MiB. */
  windowBytes?: number;
  /** Credentials of the channel to the successor; default insecure. */
  channelCredentials?: grpc.ChannelCredentials;
  /** Extra channel options, merged over keepalive defaults. */
  channelOptions?: grpc.ChannelOptions;
  /**
   * How chunks travel to the successor: `data-plane` (Peer.OpenDataLink and raw framing over TCP, no
   * per-chunk protobuf copy; a successor without one gets a Collective call) or `grpc` (the Collective
   * call always). Default data-plane.
   */
  transport?: 'data-plane' | 'grpc';
  /** TLS of data-plane connections: set it whenever `channelCredentials` are TLS (the same CA and certificate). Default none. */
  dataTls?: ConnectionOptions;
}

/** Largest chunk payload: the 4 MiB message limit less room for the chunk's other fields and framing. */
const MAX_CHUNK_BYTES = 4 * 2 ** 20 - 64 * 2 ** 10;

/** Keepalive on the channel to the successor: the Collective call idles between steps and has no deadline (docs/architecture.md §9). */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
};

// Chunks carry little-endian elements (proto/infobound.proto); typed arrays are sent as they lie in memory.
if (endianness() !== 'LE') throw new Error('RingReducer needs a little-endian host');

/** The bytes of elements [start, start + n) of a 4-byte typed array, without a copy. */
function bytesOf(a: Float32Array | Int32Array, start: number, n: number): Buffer {
  return Buffer.from(a.buffer, a.byteOffset + start * 4, n * 4);
}

/**
 * dst[at + i] += src[i] for i < n. The element loops live in small functions of their own: V8
 * optimizes them alone, where inside the async reducer the same loop measured about 2.5× slower.
 */
function addInto(dst: Float32Array, at: number, src: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) dst[at + i] = src[i]! + dst[at + i]!;
}

/** dst[at + i] = (src[i] + dst[at + i]) / divisor, the sum rounded to float32 like every other partial sum before the division (into the mean). */
function addDividedInto(dst: Float32Array, at: number, src: Float32Array, n: number, divisor: number): void {
  for (let i = 0; i < n; i++) dst[at + i] = Math.fround(src[i]! + dst[at + i]!) / divisor;
}

function describeAllReducePhase(phase: number, world: number): string {
  return phase < world - 1 ? `phase ${phase} (reduce-scatter ${phase + 1}/${world - 1})` : `phase ${phase} (all-gather ${phase - world + 2}/${world - 1})`;
}

/**
 * The GradientReducer of a multi-worker job: ring all-reduce of the dense gradient and ring
 * all-gather of sparse row gradients between the workers' Peer services (docs/architecture.md §2, §3).
 *
 * Transport: one long-lived link to the ring successor per generation (the data plane's connection,
 * or a Collective call when the successor has none or `transport` is 'grpc'), opened at the first
 * collective and reused by every step of the generation (a new generation, or a failure, opens a new
 * one). The receiving side is the local PeerServer's inbox, fed by the predecessor's link. Chunks are
 * pipelined: each received chunk is reduced (or copied) and forwarded as the next phase's chunk at once,
 * so a phase never waits for a whole segment. A collective resolves once everything it needed arrived
 * and the successor took everything it sent, so the caller may reuse its buffers.
 *
 * All-reduce: the flat float32 buffer is split into `world` near-equal segments; world − 1
 * reduce-scatter phases sum each segment along the ring starting at its own rank (partial + local, in
 * ring order), the rank that completes a segment divides it by `world`, and world − 1 all-gather phases
 * copy the finished segments around. Each element is summed exactly once, on one worker, so every
 * worker ends with the same bytes.
 *
 * All-gather of rows: each table travels as blocks, one per origin rank: the row
 * ids as INT32 chunks then the values as FLOAT32 chunks (`segment` = origin rank), world − 1 hops each.
 * Every worker then merges the same blocks the same way (rowsMean).
 *
 * Several collectives of one op in one step (a second all-gather, say) are told apart by `tensor`:
 * a step's n-th all-reduce is tensor n, and all-gather tables are numbered on across the step's
 * all-gathers (the first call's tables 0..T−1, the next call's from T). Every worker makes the same
 * calls in the same order, so the numbers agree.
 *
 * Failures (a peer down, a deadline passed, abort(), a refused chunk) reject the collective with an
 * Error naming the peer and the phase; a collective never hangs. A failed (generation, step) cannot be
 * retried in the same generation: the worker rolls back and waits for the next generation.
 */
export class RingReducer implements GradientReducer {
  /** Payload bytes this worker has sent to its successor (all collectives), for the metrics. */
  bytesSent = 0;
  private readonly inbox: CollectiveInbox;
  private readonly server: PeerServer;
  /** What every call to the successor carries: the job's peer credential, once known. */
  private metadata = new grpc.Metadata();
  private readonly chunkBytes: number;
  private readonly timeoutMs: number;
  private readonly window: number;
  private readonly credentials: grpc.ChannelCredentials;
  private readonly channelOptions: grpc.ChannelOptions;
  private topology?: RingTopology;
  /** Clients by address (only the current successor's is kept). */
  private readonly clients = new Map<string, PeerClient>();
  private link?: SuccessorLink;
  private readonly transport: 'data-plane' | 'grpc';
  private readonly dataTls?: ConnectionOptions;
  private op?: RingOp;
  /** Set by abort(): every collective rejects until the next setTopology. */
  private aborted?: string;
  private closed = false;
  /** Tensor numbers already used in `step`, per op (see the class comment). */
  private tensorsUsed = { step: -1, ALLREDUCE_SUM: 0, ALLGATHER: 0 };
  /** Reused aligned home for received payloads that are not 4-byte aligned (see float32s). */
  private scratch = new Float32Array(0);

  constructor(
    server: PeerServer,
    {
      chunkBytes = 2 ** 20,
      timeoutMs = 30_000,
      windowBytes = 8 * 2 ** 20,
      channelCredentials = grpc.credentials.createInsecure(),
      channelOptions = {},
      transport = 'data-plane',
      dataTls,
    }: RingReducerOptions = {},
  ) {
    if (!Number.isInteger(chunkBytes) || chunkBytes % 4 !== 0 || chunkBytes < 4 || chunkBytes > MAX_CHUNK_BYTES) {
      throw new UserError(`chunkBytes must be a multiple of 4 in [4, ${MAX_CHUNK_BYTES}], got ${chunkBytes}`);
    }
    if (!(timeoutMs > 0)) throw new UserError(`timeoutMs must be positive, got ${timeoutMs}`);
    if (!(windowBytes > 0)) throw new UserError(`windowBytes must be positive, got ${windowBytes}`);
    this.inbox = server.inbox;
    this.server = server;
    this.chunkBytes = chunkBytes;
    this.timeoutMs = timeoutMs;
    this.window = Math.max(1, Math.floor(windowBytes / chunkBytes));
    this.credentials = channelCredentials;
    this.channelOptions = { ...CHANNEL_OPTIONS, ...channelOptions };
    this.transport = transport;
    if (dataTls) this.dataTls = dataTls;
  }

  /** Chunks and calls this worker's Peer server refused so far, by reason. */
  get refused(): Readonly<Record<string, number>> {
    return this.server.refused;
  }

  /** Workers in the current generation (1 before the first setTopology). */
  get world(): number {
    return this.topology?.world ?? 1;
  }

  /**
   * Enters a generation; abort() is lifted. A changed topology aborts the collective in flight, and a
   * new generation or successor drops the old stream (a new one opens at the next collective); the
   * client of the successor is reused when its address stays, else created (and starts connecting).
   * The same topology again changes nothing else.
   */
  setTopology(topology: RingTopology): void {
    const { generation, rank, world, peers, credential } = topology;
    if (this.closed) throw new Error('setTopology on a closed RingReducer');
    if (!Number.isSafeInteger(generation) || generation < 0) throw new UserError(`generation must be a non-negative integer, got ${generation}`);
    if (!Number.isInteger(world) || world < 1) throw new UserError(`world must be a positive integer, got ${world}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw new UserError(`rank ${rank} is not in [0, ${world})`);
    if (peers.length !== world) throw new UserError(`${peers.length} peer addresses for a world of ${world}`);
    if (credential !== undefined) {
      this.server.setCredential(credential);
      this.metadata = new grpc.Metadata();
      this.metadata.set(PEER_CREDENTIAL_METADATA, credential);
    }
    const old = this.topology;
    this.aborted = undefined;
    const same = old && old.generation === generation && old.rank === rank && old.world === world && old.peers.every((p, i) => p === peers[i]);
    if (same) return;
    this.op?.fail(new Error(`${this.op.label}: aborted by generation ${generation} while waiting for ${this.op.waitingFor}`));
    const successor = world > 1 ? peers[successorOf(rank, world)]! : undefined;
    const oldSuccessor = old && old.world > 1 ? old.peers[successorOf(old.rank, old.world)] : undefined;
    if (this.link && (old?.generation !== generation || oldSuccessor !== successor)) {
      this.link.end();
      this.link = undefined;
    }
    for (const [address, client] of this.clients) {
      if (address === successor) continue;
      client.close();
      this.clients.delete(address);
    }
    if (successor !== undefined && !this.clients.has(successor)) {
      const client = new PeerService(successor, this.credentials, this.channelOptions) as unknown as PeerClient;
      // Connect now, so the first collective of the generation does not pay for it.
      client.getChannel().getConnectivityState(true);
      this.clients.set(successor, client);
    }
    this.topology = { generation, rank, world, peers: [...peers] };
    this.tensorsUsed = { step: -1, ALLREDUCE_SUM: 0, ALLGATHER: 0 };
    this.inbox.setTopology({ generation, rank, world });
  }

  /**
   * Rejects the collective in flight, and every later one until the next setTopology, with an Error
   * carrying `reason`: the worker rolls the step back (docs/architecture.md §5).
   */
  abort(reason: string): void {
    this.aborted = reason;
    this.op?.fail(new Error(`${this.op.label}: aborted (${reason}) while waiting for ${this.op.waitingFor}`));
  }

  /** Aborts what is in flight, ends the stream to the successor and closes the clients. */
  close(): void {
    if (this.closed) return;
    this.abort('reducer closed');
    this.closed = true;
    this.link?.end();
    this.link = undefined;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  /** The mean of `grad` over the ring, computed in place: resolves with `grad` itself, identical bytes on every worker. */
  async allReduceMean(grad: Float32Array, step: number): Promise<Float32Array> {
    const topo = this.ready('all-reduce', step);
    if (topo.world === 1) return grad;
    const tensor = this.claimTensors('ALLREDUCE_SUM', step, 1);
    return this.run('all-reduce', step, (op) => this.ringAllReduce(op, topo, grad, step, tensor, topo.world));
  }

  /** The sum of `values` over the ring, in place, as {@link allReduceMean} without the division. */
  async allReduceSum(values: Float32Array, step: number): Promise<Float32Array> {
    const topo = this.ready('all-reduce', step);
    if (topo.world === 1) return values;
    const tensor = this.claimTensors('ALLREDUCE_SUM', step, 1);
    return this.run('all-reduce', step, (op) => this.ringAllReduce(op, topo, values, step, tensor, 1));
  }

  /**
   * Ring reduce-scatter: the sum over the ring of segment (rank + 1) mod world of `values` (the
   * split of {@link segmentRange}), computed in place and returned as a view; the other segments are
   * left partly summed. The reduce-scatter phases of {@link allReduceSum}, without its all-gather:
   * each worker sends (world − 1)/world of the buffer instead of twice that.
   */
  async reduceScatterSum(values: Float32Array, step: number): Promise<Float32Array> {
    const topo = this.ready('reduce-scatter', step);
    if (topo.world === 1) return values;
    const tensor = this.claimTensors('ALLREDUCE_SUM', step, 1);
    await this.run('reduce-scatter', step, (op) => this.ringAllReduce(op, topo, values, step, tensor, 1, topo.world - 1));
    const { start, end } = segmentRange(values.length, topo.world, (topo.rank + 1) % topo.world);
    return values.subarray(start, end);
  }

  /**
   * Every worker's (ids, values) block, indexed by rank: the all-gather under allGatherRowsMean, for
   * payloads that are kept apart rather than averaged (a step's bank keys).
   */
  async allGatherBlocks(block: SparseRowGrad, step: number): Promise<SparseRowGrad[]> {
    const topo = this.ready('all-gather', step);
    if (topo.world === 1) return [block];
    const tensor = this.claimTensors('ALLGATHER', step, 1);
    return this.run('all-gather', step, async (op) => {
      this.sendBlock(op, topo, step, tensor, block);
      return this.gatherTable(op, topo, step, tensor, block);
    });
  }

  /**
   * Every worker's (ids, values) block, indexed by rank, on `root` only (null elsewhere): the
   * all-gather's schedule, but the other workers pass the blocks on without keeping them, so a
   * large payload (a checkpoint's bank shards) costs its whole size on the root alone.
   */
  async gatherBlocks(block: SparseRowGrad, step: number, root: number): Promise<SparseRowGrad[] | null> {
    const topo = this.ready('gather', step);
    if (topo.world === 1) return [block];
    const tensor = this.claimTensors('ALLGATHER', step, 1);
    return this.run('gather', step, async (op) => {
      this.sendBlock(op, topo, step, tensor, block);
      const blocks = await this.gatherTable(op, topo, step, tensor, block, topo.rank === root);
      return topo.rank === root ? blocks : null;
    });
  }

  /**
   * Per table, the mean over the ring of every worker's row gradient: distinct rows sorted ascending,
   * identical on every worker (a world of 1 sorts its own rows). Every worker passes the same number of tables.
   */
  async allGatherRowsMean(grads: SparseRowGrad[], step: number): Promise<SparseRowGrad[]> {
    grads.forEach((g, t) => rowWidth(g, `all-gather step ${step} table ${t}`));
    const topo = this.ready('all-gather', step);
    if (topo.world === 1 || grads.length === 0) return grads.map((g) => rowsMean([g], 1));
    const first = this.claimTensors('ALLGATHER', step, grads.length);
    return this.run('all-gather', step, async (op) => {
      // Every table's own block first, so the successor can work on all tables at once.
      grads.forEach((g, t) => this.sendBlock(op, topo, step, first + t, g));
      const blocks = await Promise.all(grads.map((g, t) => this.gatherTable(op, topo, step, first + t, g)));
      return blocks.map((b) => rowsMean(b, topo.world));
    });
  }

  private ready(kind: string, step: number): RingTopology {
    if (this.closed) throw new Error(`${kind} step ${step}: the RingReducer is closed`);
    const topo = this.topology;
    if (!topo) throw new Error(`${kind} step ${step}: no topology yet (call setTopology first)`);
    if (this.aborted !== undefined) throw new Error(`${kind} step ${step} (generation ${topo.generation}): aborted (${this.aborted})`);
    if (this.op) throw new Error(`${kind} step ${step}: ${this.op.label} is still in flight`);
    return topo;
  }

  /** The first of `count` fresh tensor numbers of `op` in `step`. */
  private claimTensors(op: 'ALLREDUCE_SUM' | 'ALLGATHER', step: number, count: number): number {
    if (this.tensorsUsed.step !== step) this.tensorsUsed = { step, ALLREDUCE_SUM: 0, ALLGATHER: 0 };
    const first = this.tensorsUsed[op];
    this.tensorsUsed[op] += count;
    return first;
  }

  /** "rank 2 (127.0.0.1:4567)". */
  private peerName(topo: RingTopology, rank: number): string {
    return `rank ${rank} (${topo.peers[rank]})`;
  }

  /** Runs one collective: its clock, its stream, its failure path, and the wait for the successor's acknowledgements. */
  private async run<T>(kind: string, step: number, body: (op: RingOp) => Promise<T>): Promise<T> {
    const topo = this.topology!;
    const label = `${kind} step ${step} (generation ${topo.generation}, rank ${topo.rank} of ${topo.world})`;
    const op = new RingOp(label, this.timeoutMs, (err) => {
      this.inbox.fail(err);
      // The successor learns at once that this collective is over, and fails its own instead of timing out.
      this.link?.cancel();
      this.link = undefined;
    });
    this.op = op;
    this.inbox.beginStep(step);
    try {
      this.openLink(topo);
      const result = await body(op);
      await op.allAcked(this.peerName(topo, successorOf(topo.rank, topo.world)));
      return result;
    } catch (err) {
      op.fail(err as Error);
      throw op.error;
    } finally {
      op.finish();
      if (this.op === op) this.op = undefined;
    }
  }

  private openLink(topo: RingTopology): void {
    if (this.link) return;
    const succ = successorOf(topo.rank, topo.world);
    const client = this.clients.get(topo.peers[succ]!)!;
    const events = {
      onAck: () => this.op?.ackedOne(),
      onError: (err: Error) => {
        if (this.link === link) this.link = undefined;
        const op = this.op;
        op?.fail(new Error(`${op.label}: the stream to ring successor ${this.peerName(topo, succ)} failed after sending ${op.sending}: ${err.message}`));
      },
    };
    const link: SuccessorLink =
      this.transport === 'grpc'
        ? new SuccessorStream(client, this.metadata, this.window, events)
        : new DataLinkStream(client, this.metadata, topo.peers[succ]!, this.window, events, {
            generation: topo.generation,
            fromRank: topo.rank,
            timeoutMs: this.timeoutMs,
            ...(this.dataTls ? { tls: this.dataTls } : {}),
          });
    this.link = link;
  }

  private send(op: RingOp, chunk: Chunk, sending: string): void {
    op.sending = sending;
    op.sentOne();
    this.bytesSent += chunk.data?.length ?? 0;
    this.link?.send(chunk);
  }

  /** Sends elements [start, end) of `a` as one segment: chunks of at most chunkBytes, at least one (empty) chunk. */
  private sendArray(
    op: RingOp,
    head: Omit<Chunk, 'offset' | 'segment_length' | 'data'>,
    a: Float32Array | Int32Array,
    start: number,
    end: number,
    sending: string,
  ): void {
    const length = end - start;
    const per = this.chunkBytes / 4;
    const chunks = Math.max(1, Math.ceil(length / per));
    for (let i = 0; i < chunks; i++) {
      const offset = i * per;
      const n = Math.min(per, length - offset);
      this.send(op, { ...head, offset, segment_length: length, data: bytesOf(a, start + offset, n) }, sending);
    }
  }

  /**
   * A payload as float32 elements, valid until the next call: a view when 4-byte aligned, else a copy
   * in the reused scratch array (a decoded bytes field may start at any offset of its message).
   */
  private float32s(data: Buffer): Float32Array {
    const n = data.length / 4;
    if (data.byteOffset % 4 === 0) return new Float32Array(data.buffer, data.byteOffset, n);
    if (this.scratch.length < n) this.scratch = new Float32Array(n);
    new Uint8Array(this.scratch.buffer, 0, data.length).set(data);
    return this.scratch.subarray(0, n);
  }

  /** The next chunk of a segment; a failure not yet the op's (the predecessor's stream ended) is named with what was awaited. */
  private async take(op: RingOp, key: SlotKey): Promise<Chunk__Output> {
    try {
      return await this.inbox.take(key);
    } catch (err) {
      throw op.error ?? new Error(`${op.label}: ${(err as Error).message} while waiting for ${op.waitingFor}`);
    }
  }

  /** A taken chunk that does not fit this worker's tensor: refuse its call and fail the collective. */
  private refuseTaken(op: RingOp, key: SlotKey, message: string): never {
    const err = new Error(`${op.label}: ${message}`);
    this.inbox.refuseTaken(key, { reason: 'size', message });
    throw err;
  }

  /** The first `phases` phases of ring all-reduce (all of them by default; world − 1 is its reduce-scatter). */
  private async ringAllReduce(
    op: RingOp,
    topo: RingTopology,
    grad: Float32Array,
    step: number,
    tensor: number,
    divisor: number,
    phases = allReducePhases(topo.world),
  ): Promise<Float32Array> {
    const { generation, rank, world } = topo;
    const pred = this.peerName(topo, predecessorOf(rank, world));
    const head = { generation, step, op: 'ALLREDUCE_SUM', tensor, from_rank: rank, dtype: 'FLOAT32' } as const;
    const own = segmentRange(grad.length, world, rank);
    this.sendArray(op, { ...head, phase: 0, segment: rank }, grad, own.start, own.end, describeAllReducePhase(0, world));
    for (let phase = 0; phase < phases; phase++) {
      const segment = allReduceSegment(rank, world, phase);
      const { start, end } = segmentRange(grad.length, world, segment);
      const length = end - start;
      const key: SlotKey = { step, op: 'ALLREDUCE_SUM', tensor, phase, dtype: 'FLOAT32' };
      const reducing = phase < world - 1;
      const completing = phase === world - 2;
      const next = phase + 1 < phases ? describeAllReducePhase(phase + 1, world) : undefined;
      op.waitingFor = `${describeAllReducePhase(phase, world)} from ${pred}`;
      let received = 0;
      do {
        const chunk = await this.take(op, key);
        op.progress();
        if (chunk.segment_length !== length) {
          this.refuseTaken(
            op,
            key,
            `${describeAllReducePhase(phase, world)}: ${pred} sent segment ${segment} as ${chunk.segment_length} elements, this worker's is ${length} (gradients of different lengths?)`,
          );
        }
        const at = start + chunk.offset;
        const n = chunk.data.length / 4;
        if (reducing) {
          const values = this.float32s(chunk.data);
          if (completing) addDividedInto(grad, at, values, n, divisor);
          else addInto(grad, at, values, n);
        } else {
          new Uint8Array(grad.buffer, grad.byteOffset + at * 4, n * 4).set(chunk.data);
        }
        received += n;
        if (next)
          this.send(
            op,
            { ...head, phase: phase + 1, segment, offset: chunk.offset, segment_length: length, data: reducing ? bytesOf(grad, at, n) : chunk.data },
            next,
          );
      } while (received < length);
    }
    return grad;
  }

  /** Queues phase 0 of a table's all-gather: this rank's row ids, then its values. */
  private sendBlock(op: RingOp, topo: RingTopology, step: number, tensor: number, g: SparseRowGrad): void {
    const head = { generation: topo.generation, step, op: 'ALLGATHER', tensor, phase: 0, segment: topo.rank, from_rank: topo.rank } as const;
    const sending = `table ${tensor} phase 0`;
    this.sendArray(op, { ...head, dtype: 'INT32' }, g.rows, 0, g.rows.length, sending);
    this.sendArray(op, { ...head, dtype: 'FLOAT32' }, g.values, 0, g.values.length, sending);
  }

  /** Every rank's block of one table, by origin rank, forwarding each received chunk on the way; without `keep`, the others' blocks come back empty. */
  private async gatherTable(op: RingOp, topo: RingTopology, step: number, tensor: number, own: SparseRowGrad, keep = true): Promise<SparseRowGrad[]> {
    const { rank, world } = topo;
    const blocks: SparseRowGrad[] = new Array<SparseRowGrad>(world);
    blocks[rank] = own;
    for (let phase = 0; phase < allGatherPhases(world); phase++) {
      const origin = allGatherOrigin(rank, world, phase);
      const rows = await this.receivePart(op, topo, step, tensor, phase, origin, 'INT32', keep);
      const values = await this.receivePart(op, topo, step, tensor, phase, origin, 'FLOAT32', keep);
      blocks[origin] = { rows: new Int32Array(rows.buffer), values: new Float32Array(values.buffer) };
    }
    return blocks;
  }

  /** One part (ids or values) of an origin's block, assembled into aligned bytes. */
  private async receivePart(
    op: RingOp,
    topo: RingTopology,
    step: number,
    tensor: number,
    phase: number,
    origin: number,
    dtype: 'INT32' | 'FLOAT32',
    keep: boolean,
  ): Promise<Uint8Array> {
    const { generation, rank, world } = topo;
    const key: SlotKey = { step, op: 'ALLGATHER', tensor, phase, dtype };
    const forward = phase + 1 < allGatherPhases(world);
    const where = `table ${tensor} phase ${phase} (${phase + 1}/${world - 1})`;
    op.waitingFor = `${where} ${dtype === 'INT32' ? 'row ids' : 'values'} of rank ${origin} from ${this.peerName(topo, predecessorOf(rank, world))}`;
    const pieces: Buffer[] = [];
    let received = 0;
    let length = 0;
    do {
      const chunk = await this.take(op, key);
      op.progress();
      length = chunk.segment_length;
      if (keep) pieces.push(chunk.data);
      received += chunk.data.length / 4;
      if (forward) {
        const sending = `table ${tensor} phase ${phase + 1}`;
        this.send(
          op,
          {
            generation,
            step,
            op: 'ALLGATHER',
            tensor,
            phase: phase + 1,
            segment: origin,
            offset: chunk.offset,
            segment_length: length,
            from_rank: rank,
            dtype,
            data: chunk.data,
          },
          sending,
        );
      }
    } while (received < length);
    const out = new Uint8Array(keep ? received * 4 : 0);
    let at = 0;
    for (const p of pieces) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}
