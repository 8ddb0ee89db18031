import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { FrameReader, FrameType, MAX_TICKET_BYTES, ackFrame, readChunk, refusalFrame, type Frame } from '../../proto/data-link-frame.js';
import { ChunkFeed } from './chunk-feed.js';
import { REFUSAL_STATUS, type ChunkSource, type CollectiveInbox, type Refusal } from './collective-inbox.js';

/** Options of a DataLinkListener. */
export interface DataLinkListenerOptions {
  /** Interface to bind: the Peer server's. */
  host: string;
  /** Port to bind; default 0 (any free port; OpenDataLink tells it). */
  port?: number;
  /** TLS of the listener (the Peer service's certificate); default none (plain TCP, like an insecure Peer service). */
  tls?: TlsOptions;
  /** Largest chunk payload accepted, in bytes; a larger one is refused (`oversized`) before it is read. */
  maxChunkBytes: number;
  /** How long a chunk of a generation the receiver has not entered waits for it (PeerServer's newerGenerationWaitMs). */
  newerWaitMs: number;
  /** How long a ticket stays valid, and how long a new connection may take to present one; default 10000 ms. */
  ticketTtlMs?: number;
}

/** A ticket handed out by OpenDataLink: what the connection presenting it may send. */
interface Ticket {
  generation: number;
  fromRank: number;
  expires: number;
}

/** Tickets outstanding at once: more are not needed by one predecessor, and a flood is bounded. */
const MAX_TICKETS = 64;

/**
 * The receiving end of the data plane: a TCP (or TLS) listener beside the Peer gRPC service. A
 * connection is admitted only with a ticket the Peer service issued to an authenticated caller
 * (OpenDataLink), once, within its lifetime; its chunks must be of the ticket's generation and sender.
 * Chunks then go into the same inbox, checked the same way, as the Collective call's; taking a chunk
 * sends an ACK frame, a refusal a REFUSAL frame before the connection is closed.
 */
export class DataLinkListener {
  /** Connections admitted with a valid ticket so far. */
  admitted = 0;
  private readonly tickets = new Map<string, Ticket>();
  private readonly sockets = new Set<Socket>();
  private readonly ttlMs: number;

  private constructor(
    private readonly server: Server,
    private readonly inbox: CollectiveInbox,
    private readonly opts: DataLinkListenerOptions,
  ) {
    this.ttlMs = opts.ticketTtlMs ?? 10_000;
  }

  /** Binds and starts a listener feeding `inbox`. */
  static async start(inbox: CollectiveInbox, opts: DataLinkListenerOptions): Promise<DataLinkListener> {
    let listener!: DataLinkListener;
    const onSocket = (socket: Socket): void => listener.serve(socket);
    const server = opts.tls ? createTlsServer(opts.tls, onSocket) : createTcpServer(onSocket);
    listener = new DataLinkListener(server, inbox, opts);
    // A failed TLS handshake never becomes a connection: nothing to serve, nothing to count as a chunk.
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    server.listen(opts.port ?? 0, opts.host);
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
    return listener;
  }

  /** The bound port. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** A one-time ticket for `fromRank` of `generation` (the caller is authenticated by the Peer service). */
  issueTicket(generation: number, fromRank: number): Buffer {
    const now = Date.now();
    for (const [key, t] of this.tickets) if (t.expires <= now) this.tickets.delete(key);
    if (this.tickets.size >= MAX_TICKETS) this.tickets.delete(this.tickets.keys().next().value!);
    const ticket = randomBytes(32);
    this.tickets.set(ticket.toString('hex'), { generation, fromRank, expires: now + this.ttlMs });
    return ticket;
  }

  /** Stops listening and closes every connection (the inbox is the Peer server's to close). */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    // Until a ticket is presented, the connection is nobody's: it gets a deadline and is closed quietly.
    const helloTimer = setTimeout(() => socket.destroy(), this.ttlMs);
    let ticket: Ticket | undefined;
    let feed: ChunkFeed | undefined;
    const refuse = (refusal: Refusal): void => {
      if (feed?.ended) return;
      feed?.end();
      socket.end(refusalFrame(REFUSAL_STATUS[refusal.reason], refusal.message));
      if (source) this.inbox.sourceClosed(source, `was refused: ${refusal.message}`);
    };
    let source: ChunkSource | undefined;
    const reader = new FrameReader({ [FrameType.HELLO]: MAX_TICKET_BYTES });
    const onFrame = (frame: Frame): void => {
      // Once refused (ended), the rest of what the sender wrote is not judged again, nor counted twice.
      if (feed?.ended || socket.writableEnded) return;
      if (ticket === undefined) {
        clearTimeout(helloTimer);
        ticket = frame.type === FrameType.HELLO ? this.redeem(frame.payload) : undefined;
        if (ticket === undefined) {
          this.inbox.countRefusedCall('credential');
          socket.end(refusalFrame(REFUSAL_STATUS.credential, 'a data-plane connection without a valid ticket (Peer.OpenDataLink)'));
          return;
        }
        this.admitted++;
        source = {
          ack: () => {
            if (!feed!.ended) socket.write(ackFrame(1));
          },
          refuse,
        };
        feed = new ChunkFeed(this.inbox, source, socket, this.opts.newerWaitMs);
        // From here on only chunks, each within the chunk bound.
        reader.accept({ [FrameType.CHUNK]: this.opts.maxChunkBytes });
        return;
      }
      const chunk = readChunk(frame.head, frame.payload);
      if (chunk.generation !== ticket.generation) {
        this.inbox.countRefusedCall('generation');
        refuse({ reason: 'generation', message: `chunk of generation ${chunk.generation} on a data link opened for generation ${ticket.generation}` });
        return;
      }
      if (chunk.from_rank !== ticket.fromRank) {
        this.inbox.countRefusedCall('sender');
        refuse({ reason: 'sender', message: `chunk from rank ${chunk.from_rank} on a data link opened for rank ${ticket.fromRank}` });
        return;
      }
      feed!.push(chunk);
    };
    socket.on('data', (data: Buffer) => {
      if (feed?.ended || socket.destroyed) return;
      const error = reader.push(data, onFrame);
      if (error === null || socket.writableEnded) return;
      const reason = error.oversized ? 'oversized' : 'frame';
      this.inbox.countRefusedCall(reason);
      if (feed) refuse({ reason, message: error.message });
      else socket.end(refusalFrame(REFUSAL_STATUS[reason], error.message));
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(helloTimer);
      this.sockets.delete(socket);
      if (!feed || feed.ended) return;
      feed.end();
      this.inbox.sourceClosed(source!, 'closed');
    });
  }

  /** The ticket's grant, used up; undefined for an unknown or expired ticket. */
  private redeem(presented: Buffer): Ticket | undefined {
    const key = presented.toString('hex');
    const t = this.tickets.get(key);
    this.tickets.delete(key);
    return t && t.expires > Date.now() ? t : undefined;
  }
}
