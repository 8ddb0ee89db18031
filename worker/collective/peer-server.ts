import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import { PeerService } from '../../common/proto.js';
import { OversizedRequest, hardReceiveLimit, sizeLimitedService } from '../../common/size-limited-service.js';
import type { Chunk__Output } from '../../proto/generated/infobound/v1/Chunk.js';
import type { ChunkAck } from '../../proto/generated/infobound/v1/ChunkAck.js';
import type { StateChunk } from '../../proto/generated/infobound/v1/StateChunk.js';
import type { StateRequest__Output } from '../../proto/generated/infobound/v1/StateRequest.js';
import type { DataLinkRequest__Output } from '../../proto/generated/infobound/v1/DataLinkRequest.js';
import type { DataLinkTicket } from '../../proto/generated/infobound/v1/DataLinkTicket.js';
import type { TlsOptions } from 'node:tls';
import { ChunkFeed } from './chunk-feed.js';
import { DataLinkListener } from './data-link-listener.js';
import { CollectiveInbox, REFUSAL_STATUS, type ChunkSource, type RefusalReason } from './collective-inbox.js';

/** A worker's model state as served to a joining worker: the last committed step and its serialized checkpoint. */
export interface PeerState {
  /** The step the state is the result of. */
  step: number;
  /** The serialized state (common/checkpoint-file.ts format). */
  data: Buffer;
}

/** Produces the state FetchState serves (called once per request). */
export type StateProvider = () => Promise<PeerState>;

/** Options of PeerServer.start. */
export interface PeerServerOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Port to bind; default 0 (any free port, see `address`). */
  port?: number;
  /** Default insecure (plaintext). */
  credentials?: grpc.ServerCredentials;
  /** Bound on chunks buffered ahead of the local reducer, in bytes; beyond it a chunk is refused with RESOURCE_EXHAUSTED. Default 256 MiB. */
  maxBufferedBytes?: number;
  /**
   * How long a chunk of a generation this worker has not entered yet is held (its call paused) waiting
   * for the local reducer to enter it, before it is refused with FAILED_PRECONDITION. Default 5000 ms.
   */
  newerGenerationWaitMs?: number;
  /** Deadline of each wait for a FetchState client to take the next chunk. Default 30000 ms. */
  sendTimeoutMs?: number;
  /** How long close() lets FetchState transfers finish before cutting them. Default 1000 ms. */
  closeGraceMs?: number;
  /** HTTP/2 receive window of each incoming stream, in bytes (see widenReceiveWindow). Default 8 MiB. */
  receiveWindowBytes?: number;
  /**
   * Refuse every Peer call (Collective, FetchState) that does not carry the job's peer credential
   * (set by {@link PeerServer.setCredential}, from the membership), and every call before it is known.
   * A worker sets it; a server without it serves anyone (collective benchmarks and tests). Default false.
   */
  requireCredential?: boolean;
  /**
   * Serve the data plane (Peer.OpenDataLink and its TCP listener on the same host): collective chunks
   * then travel without protobuf copies. Without it, OpenDataLink answers UNIMPLEMENTED and senders
   * use the Collective call. Default true.
   */
  dataPlane?: boolean;
  /** Port of the data-plane listener; default 0 (any free port: OpenDataLink tells it). */
  dataPort?: number;
  /** TLS of the data-plane listener: set it whenever `credentials` are TLS (the same certificate). Default none. */
  dataTls?: TlsOptions;
  /** How long a data-plane ticket stays valid, and a new data-plane connection may wait before presenting one, in ms. Default 10000. */
  dataTicketTtlMs?: number;
}

/** The gRPC metadata key of the job's peer credential on every Peer call. */
export const PEER_CREDENTIAL_METADATA = 'x-infobound-peer';

/** Bytes of one StateChunk's payload: well under gRPC's 4 MiB default message limit. */
export const STATE_CHUNK_BYTES = 2 ** 20;

/** Largest Peer request parsed: a collective chunk carries at most a MiB or so; larger is refused and counted (`oversized`). */
export const MAX_PEER_REQUEST_BYTES = 4 * 2 ** 20;

/**
 * Keepalive pings on idle connections, so a peer that vanished without closing its sockets is noticed
 * between steps (docs/architecture.md §9: no deadline on long-lived streams; keepalive bounds them instead).
 */
const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
};

/**
 * Raises the HTTP/2 receive window of every session of the server. grpc-js 1.14's server does not read
 * 'grpc-node.flow_control_window' (grpc/grpc-node#3058, open), so each incoming stream keeps Node's
 * 64 KiB window and a 1 MiB chunk waits on 16 WINDOW_UPDATE round trips through a busy event loop;
 * measured here (bench:allreduce, 64 MiB), an 8 MiB window made the ring all-reduce 1.6–2.4× faster. Reaches
 * into the server's private listener map; if a later grpc-js lacks it, nothing happens (and the option,
 * which is also passed, should then be honoured).
 */
function widenReceiveWindow(server: grpc.Server, bytes: number): void {
  const listeners = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(listeners instanceof Map)) return;
  for (const listener of listeners.keys() as Iterable<Http2Server>) {
    listener.on('session', (session: ServerHttp2Session) => {
      session.settings({ initialWindowSize: bytes });
      // The connection's window too, or it caps every stream at 64 KiB all the same.
      session.setLocalWindowSize(2 * bytes);
    });
  }
}

/** An Error that grpc-js turns into the call's final status. */
function statusError(code: grpc.status, details: string): Error & { code: grpc.status; details: string } {
  return Object.assign(new Error(details), { code, details });
}

/** `host:port`, with brackets around an IPv6 host. */
function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Resolves on 'drain', or with false when the call closes or `ms` pass first. */
function waitDrain(call: grpc.ServerWritableStream<StateRequest__Output, StateChunk>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      call.off('drain', onDrain);
      call.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    const timer = setTimeout(() => done(false), ms);
    call.on('drain', onDrain);
    call.on('close', onClose);
  });
}

/** Service names the Peer server's health service reports: the server as a whole ('') and Peer. */
export const PEER_HEALTH_SERVICES = ['', 'infobound.v1.Peer'] as const;

/**
 * A worker's Peer service (proto/infobound.proto): the receiving end of the ring collectives, whose
 * chunks are checked and kept in `inbox` for the local RingReducer, and FetchState, which serves the
 * worker's last committed state to a joining worker.
 */
export class PeerServer {
  /** grpc.health.v1 for Kubernetes' gRPC probes: SERVING until close(). */
  private readonly health = new HealthImplementation(Object.fromEntries(PEER_HEALTH_SERVICES.map((s) => [s, 'SERVING' as const])));
  private provider?: StateProvider;
  private readonly collectiveCalls = new Set<grpc.ServerDuplexStream<Chunk__Output, ChunkAck>>();
  private closing?: Promise<void>;
  private bound = '';
  /** SHA-256 of the job's peer credential, once the membership told it. */
  private credentialDigest: Buffer | null = null;
  /** Resolves when the first credential is set. */
  private readonly credentialKnown: Promise<void>;
  private credentialArrived!: () => void;
  /** The data plane's listener, when served. */
  private dataLink?: DataLinkListener;

  private constructor(
    private readonly server: grpc.Server,
    /** Chunks received from the ring predecessor, for the local reducer. */
    readonly inbox: CollectiveInbox,
    private readonly opts: Required<Pick<PeerServerOptions, 'newerGenerationWaitMs' | 'sendTimeoutMs' | 'closeGraceMs' | 'requireCredential'>>,
  ) {
    this.credentialKnown = new Promise((resolve) => {
      this.credentialArrived = resolve;
    });
  }

  /** Binds and starts a Peer server. */
  static async start({
    host = '127.0.0.1',
    port = 0,
    credentials = grpc.ServerCredentials.createInsecure(),
    maxBufferedBytes,
    newerGenerationWaitMs = 5000,
    sendTimeoutMs = 30_000,
    closeGraceMs = 1000,
    receiveWindowBytes = 8 * 2 ** 20,
    requireCredential = false,
    dataPlane = true,
    dataPort = 0,
    dataTls,
    dataTicketTtlMs,
  }: PeerServerOptions = {}): Promise<PeerServer> {
    const server = new grpc.Server({
      ...SERVER_OPTIONS,
      'grpc-node.flow_control_window': receiveWindowBytes,
      'grpc.max_receive_message_length': hardReceiveLimit(MAX_PEER_REQUEST_BYTES),
    });
    const peer = new PeerServer(server, new CollectiveInbox({ maxBufferedBytes }), { newerGenerationWaitMs, sendTimeoutMs, closeGraceMs, requireCredential });
    server.addService(sizeLimitedService(PeerService.service, MAX_PEER_REQUEST_BYTES), {
      Collective: (call: grpc.ServerDuplexStream<Chunk__Output, ChunkAck>) => peer.collective(call),
      FetchState: (call: grpc.ServerWritableStream<StateRequest__Output, StateChunk>) => void peer.fetchState(call),
      OpenDataLink: (call: grpc.ServerUnaryCall<DataLinkRequest__Output, DataLinkTicket>, callback: grpc.sendUnaryData<DataLinkTicket>) =>
        void peer.openDataLink(call, callback),
    });
    peer.health.addToServer(server);
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(joinHostPort(host, port), credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    widenReceiveWindow(server, receiveWindowBytes);
    peer.bound = joinHostPort(host, bound);
    if (dataPlane) {
      try {
        peer.dataLink = await DataLinkListener.start(peer.inbox, {
          host,
          port: dataPort,
          ...(dataTls ? { tls: dataTls } : {}),
          maxChunkBytes: MAX_PEER_REQUEST_BYTES,
          newerWaitMs: newerGenerationWaitMs,
          ...(dataTicketTtlMs !== undefined ? { ticketTtlMs: dataTicketTtlMs } : {}),
        });
      } catch (err) {
        server.forceShutdown();
        throw new Error(`data plane on ${joinHostPort(host, dataPort)}: ${(err as Error).message}`);
      }
    }
    return peer;
  }

  /** host:port the server listens on, e.g. "127.0.0.1:40123" (the bound host: advertise a reachable one to peers). */
  get address(): string {
    return this.bound;
  }

  /** Port of the data-plane listener (on the Peer server's host), or null when the data plane is off. */
  get dataPort(): number | null {
    return this.dataLink?.port ?? null;
  }

  /** Data-plane connections admitted (with a valid ticket) so far. */
  get dataLinksAdmitted(): number {
    return this.dataLink?.admitted ?? 0;
  }

  /** Chunks refused so far, by reason. */
  get refused(): Record<RefusalReason, number> {
    return this.inbox.refused;
  }

  /** Sets the job's peer credential (Membership.peer_credential), which every Peer call must carry. */
  setCredential(credential: string): void {
    this.credentialDigest = createHash('sha256').update(credential).digest();
    this.credentialArrived();
  }

  /** Why a call may not be served (no or a wrong peer credential), or null when it may. */
  private unauthenticated(call: { metadata: grpc.Metadata }): string | null {
    if (!this.opts.requireCredential) return null;
    if (this.credentialDigest === null) return 'this peer has no membership yet';
    const given = call.metadata.get(PEER_CREDENTIAL_METADATA)[0];
    if (typeof given !== 'string' || !timingSafeEqual(createHash('sha256').update(given).digest(), this.credentialDigest)) {
      return `a Peer call without the job's peer credential (${PEER_CREDENTIAL_METADATA})`;
    }
    return null;
  }

  /** Sets (or clears) what FetchState serves; without a provider FetchState answers UNAVAILABLE. */
  setStateProvider(provider: StateProvider | undefined): void {
    this.provider = provider;
  }

  /**
   * Stops serving: collective streams end with UNAVAILABLE at once (they never end on their own),
   * FetchState transfers get `closeGraceMs` to finish, then every connection is cut.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const service of PEER_HEALTH_SERVICES) this.health.setStatus(service, 'NOT_SERVING');
      this.inbox.close();
      for (const call of this.collectiveCalls) call.emit('error', statusError(grpc.status.UNAVAILABLE, `peer ${this.address} is shutting down`));
      void this.dataLink?.close();
      const force = setTimeout(() => this.server.forceShutdown(), this.opts.closeGraceMs);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    return this.closing;
  }

  /**
   * One predecessor's chunk stream. Chunks are offered to the inbox in arrival order; a refused chunk
   * ends the call with its status. A chunk of a generation the reducer has not entered yet pauses the
   * call until it does (bounded by newerGenerationWaitMs): flow control holds the sender meanwhile.
   */
  private collective(call: grpc.ServerDuplexStream<Chunk__Output, ChunkAck>): void {
    if (this.opts.requireCredential && this.credentialDigest === null) void this.credentialSettled().then(() => this.serveCollective(call));
    else this.serveCollective(call);
  }

  /**
   * Resolves once the credential is known, or at once when none is required. A member may call moments
   * before this worker has its first membership (a joiner still in its Join): the call waits for it,
   * bounded like a chunk of a newer generation, and is then judged as usual.
   */
  private credentialSettled(): Promise<void> {
    if (!this.opts.requireCredential || this.credentialDigest !== null) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.opts.newerGenerationWaitMs);
    });
    return Promise.race([this.credentialKnown, waited]).then(() => clearTimeout(timer));
  }

  private serveCollective(call: grpc.ServerDuplexStream<Chunk__Output, ChunkAck>): void {
    const refused = this.unauthenticated(call);
    if (refused !== null) {
      this.inbox.countRefusedCall('credential');
      call.emit('error', statusError(REFUSAL_STATUS.credential, refused));
      return;
    }
    this.collectiveCalls.add(call);
    const source: ChunkSource = {
      ack: (chunk) => {
        if (!feed.ended) call.write({ step: chunk.step, phase: chunk.phase, offset: chunk.offset });
      },
      refuse: (refusal) => {
        if (feed.ended) return;
        feed.end();
        call.emit('error', statusError(REFUSAL_STATUS[refusal.reason], refusal.message));
        this.inbox.sourceClosed(source, `was refused: ${refusal.message}`);
      },
    };
    const feed = new ChunkFeed(this.inbox, source, call, this.opts.newerGenerationWaitMs);
    call.on('data', (chunk: Chunk__Output | OversizedRequest) => {
      if (feed.ended) return;
      if (chunk instanceof OversizedRequest) {
        this.inbox.countRefusedCall('oversized');
        source.refuse({ reason: 'oversized', message: chunk.message });
        return;
      }
      feed.push(chunk);
    });
    call.on('end', () => {
      if (feed.ended) return;
      feed.end();
      this.inbox.sourceClosed(source, 'closed');
      call.end();
    });
    call.on('close', () => {
      this.collectiveCalls.delete(call);
      if (feed.ended) return;
      feed.end();
      this.inbox.sourceClosed(source, call.cancelled ? 'was cancelled' : 'closed');
    });
  }

  /** A ticket for the data plane, to an authenticated caller; UNIMPLEMENTED when the data plane is off. */
  private async openDataLink(call: grpc.ServerUnaryCall<DataLinkRequest__Output, DataLinkTicket>, callback: grpc.sendUnaryData<DataLinkTicket>): Promise<void> {
    await this.credentialSettled();
    const refused = this.unauthenticated(call);
    if (refused !== null) {
      this.inbox.countRefusedCall('credential');
      return callback(statusError(REFUSAL_STATUS.credential, refused));
    }
    if ((call.request as unknown) instanceof OversizedRequest) {
      this.inbox.countRefusedCall('oversized');
      return callback(statusError(REFUSAL_STATUS.oversized, (call.request as unknown as OversizedRequest).message));
    }
    if (!this.dataLink) return callback(statusError(grpc.status.UNIMPLEMENTED, `peer ${this.address} serves no data plane`));
    const { generation, from_rank } = call.request;
    callback(null, { port: this.dataLink.port, ticket: this.dataLink.issueTicket(generation, from_rank) });
  }

  /** Streams the provider's state in STATE_CHUNK_BYTES pieces (one empty piece for an empty state). */
  private async fetchState(call: grpc.ServerWritableStream<StateRequest__Output, StateChunk>): Promise<void> {
    const fail = (code: grpc.status, details: string): void => void call.emit('error', statusError(code, details));
    const refused = this.unauthenticated(call);
    if (refused !== null) {
      this.inbox.countRefusedCall('credential');
      return fail(REFUSAL_STATUS.credential, refused);
    }
    if ((call.request as unknown) instanceof OversizedRequest) {
      this.inbox.countRefusedCall('oversized');
      return fail(REFUSAL_STATUS.oversized, (call.request as unknown as OversizedRequest).message);
    }
    const provider = this.provider;
    if (!provider) return fail(grpc.status.UNAVAILABLE, `peer ${this.address} has no state to serve yet`);
    const { generation } = this.inbox;
    if (generation !== undefined && call.request.generation < generation) {
      return fail(grpc.status.FAILED_PRECONDITION, `state request of generation ${call.request.generation}, this peer is in generation ${generation}`);
    }
    let state: PeerState;
    try {
      state = await provider();
    } catch (err) {
      return fail(grpc.status.UNAVAILABLE, `peer ${this.address} could not produce its state: ${(err as Error).message}`);
    }
    const { step, data } = state;
    const pieces = Math.max(1, Math.ceil(data.length / STATE_CHUNK_BYTES));
    for (let i = 0; i < pieces; i++) {
      if (call.cancelled || call.destroyed) return;
      const offset = i * STATE_CHUNK_BYTES;
      const piece = data.subarray(offset, offset + STATE_CHUNK_BYTES);
      if (!call.write({ step, total_bytes: data.length, offset, data: piece }) && !(await waitDrain(call, this.opts.sendTimeoutMs))) {
        if (!call.cancelled && !call.destroyed) fail(grpc.status.DEADLINE_EXCEEDED, `the client took no state chunk for ${this.opts.sendTimeoutMs} ms`);
        return;
      }
    }
    call.end();
  }
}
