import * as grpc from '@grpc/grpc-js';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { FrameReader, FrameType, MAX_REFUSAL_BYTES, chunkHeader, helloFrame, readAckCount, readRefusalCode, type Frame } from '../../proto/data-link-frame.js';
import type { Chunk } from '../../proto/generated/infobound/v1/Chunk.js';
import type { DataLinkTicket__Output } from '../../proto/generated/infobound/v1/DataLinkTicket.js';
import type { PeerClient } from '../../proto/generated/infobound/v1/Peer.js';
import type { SuccessorEvents, SuccessorLink } from './successor-link.js';
import { SuccessorStream } from './successor-stream.js';

/** Options of a DataLinkStream. */
export interface DataLinkStreamOptions {
  /** The sender's generation and rank, for the ticket. */
  generation: number;
  fromRank: number;
  /** TLS of the connection (the CA, this worker's certificate); default plain TCP. */
  tls?: ConnectionOptions;
  /** Deadline of the OpenDataLink call, in ms. */
  timeoutMs: number;
}

/** The host of a `host:port` address, without an IPv6 address's brackets. */
function hostOf(address: string): string {
  const host = address.slice(0, address.lastIndexOf(':'));
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/**
 * The ring's sending half over the data plane (proto/data-link-frame.ts): asks the successor's Peer
 * service for a ticket (OpenDataLink, with the job's peer credential), connects to its data-plane
 * port, presents the ticket, then writes each chunk as a fixed header followed by the tensor's bytes
 * as they lie in memory: no protobuf encoding, no copy in this process. Chunks sent before the
 * connection is up wait in order. A successor without a data plane (OpenDataLink UNIMPLEMENTED) gets
 * the same chunks over a Collective call instead.
 */
export class DataLinkStream implements SuccessorLink {
  private socket?: Socket;
  private fallback?: SuccessorStream;
  private readonly queue: Chunk[] = [];
  private inFlight = 0;
  private connected = false;
  private done = false;
  private readonly reader = new FrameReader({ [FrameType.ACK]: 0, [FrameType.REFUSAL]: MAX_REFUSAL_BYTES });

  constructor(
    client: PeerClient,
    /** Carries the job's peer credential. */
    metadata: grpc.Metadata,
    /** The successor's Peer address (host:port); the data-plane port comes from OpenDataLink. */
    address: string,
    /** Most chunks written and not yet acknowledged. */
    private readonly window: number,
    private readonly events: SuccessorEvents,
    opts: DataLinkStreamOptions,
  ) {
    client.OpenDataLink(
      { generation: opts.generation, from_rank: opts.fromRank },
      metadata,
      { deadline: Date.now() + opts.timeoutMs },
      (err: grpc.ServiceError | null, offer?: DataLinkTicket__Output) => {
        if (this.done) return;
        if (err?.code === grpc.status.UNIMPLEMENTED) return this.fallBack(client, metadata);
        if (err || !offer)
          return this.finish(new Error(`OpenDataLink: ${err ? `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}` : 'no ticket'}`));
        this.connect(hostOf(address), offer, opts.tls);
      },
    );
  }

  send(chunk: Chunk): void {
    if (this.done) return;
    if (this.fallback) {
      this.fallback.send(chunk);
      return;
    }
    this.queue.push(chunk);
    this.pump();
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    this.fallback?.end();
    this.socket?.end();
  }

  cancel(): void {
    this.done = true;
    this.queue.length = 0;
    this.fallback?.cancel();
    this.socket?.destroy();
  }

  private fallBack(client: PeerClient, metadata: grpc.Metadata): void {
    this.fallback = new SuccessorStream(client, metadata, this.window, this.events);
    for (const chunk of this.queue.splice(0)) this.fallback.send(chunk);
  }

  private connect(host: string, offer: DataLinkTicket__Output, tls: ConnectionOptions | undefined): void {
    const ready = (): void => {
      this.connected = true;
      socket.write(helloFrame(offer.ticket));
      this.pump();
    };
    const socket: Socket = tls
      ? connectTls({ ...tls, host, port: offer.port, ...(isIP(host) ? {} : { servername: host }) }, ready)
      : connectTcp({ host, port: offer.port, noDelay: true }, ready);
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => {
      const error = this.reader.push(data, (frame) => this.onFrame(frame));
      if (error) this.finish(new Error(`the successor's data link sent ${error.message}`));
    });
    socket.on('error', (err) => this.finish(new Error(`data link to ${host}:${offer.port}: ${err.message}`)));
    socket.on('close', () => this.finish(new Error('the successor closed the data link')));
  }

  private onFrame(frame: Frame): void {
    if (frame.type === FrameType.REFUSAL) {
      const code = readRefusalCode(frame.head);
      this.finish(new Error(`${grpc.status[code] ?? code}: ${frame.payload.toString('utf8')}`));
      return;
    }
    for (let n = readAckCount(frame.head); n > 0 && !this.done; n--) {
      this.inFlight = Math.max(0, this.inFlight - 1);
      this.events.onAck();
    }
    this.pump();
  }

  /**
   * Writes what the window allows. The socket's own buffer is not waited on ('drain'): what it holds
   * is at most the window's chunks, views of the sender's tensors rather than copies.
   */
  private pump(): void {
    const socket = this.socket;
    if (!socket || !this.connected) return;
    while (!this.done && this.inFlight < this.window && this.queue.length > 0) {
      const chunk = this.queue.shift()!;
      const data = chunk.data as Uint8Array;
      this.inFlight++;
      socket.cork();
      socket.write(chunkHeader(chunk, data.length));
      if (data.length > 0) socket.write(data);
      socket.uncork();
    }
  }

  private finish(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    this.socket?.destroy();
    this.events.onError(err);
  }
}
