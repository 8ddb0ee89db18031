import * as grpc from '@grpc/grpc-js';
import { constants as bufferConstants } from 'node:buffer';
import { PeerService } from '../../common/proto.js';
import type { PeerClient } from '../../proto/generated/infobound/v1/Peer.js';
import type { StateChunk__Output } from '../../proto/generated/infobound/v1/StateChunk.js';
import { PEER_CREDENTIAL_METADATA, type PeerState } from './peer-server.js';

/** The peer's state could not be fetched (the peer went away, the transfer broke): a later generation names another source. */
export class FetchStateError extends Error {}

/** Options of fetchState. */
export interface FetchStateOptions {
  /** Identity of the fetching worker (StateRequest.worker_id). */
  workerId: string;
  /** The generation the fetching worker joined; a peer in a later generation refuses the request. */
  generation: number;
  /** Deadline of the whole transfer, in ms; default 30000. */
  timeoutMs?: number;
  /** The job's peer credential (Membership.peer_credential), which the serving peer requires. */
  credential?: string;
  /** Default insecure. */
  credentials?: grpc.ChannelCredentials;
  /** Extra channel options. */
  channelOptions?: grpc.ChannelOptions;
}

/**
 * Pulls a peer's last committed state (Peer.FetchState) into one Buffer. The pieces must come in order,
 * agree on step and total size, and add up to it; otherwise, or on any gRPC error, the promise rejects
 * with an Error naming the peer.
 */
export async function fetchState(
  address: string,
  { workerId, generation, timeoutMs = 30_000, credential, credentials = grpc.credentials.createInsecure(), channelOptions }: FetchStateOptions,
): Promise<PeerState> {
  // A wide receive window: the state flows toward this client, 1 MiB pieces through Node's default 64 KiB window would crawl.
  const client = new PeerService(address, credentials, { 'grpc-node.flow_control_window': 8 * 2 ** 20, ...channelOptions }) as unknown as PeerClient;
  try {
    return await new Promise<PeerState>((resolve, reject) => {
      // A bounded transfer, unlike the collectives' streams: one deadline covers it.
      const metadata = new grpc.Metadata();
      if (credential !== undefined) metadata.set(PEER_CREDENTIAL_METADATA, credential);
      const call = client.FetchState({ worker_id: workerId, generation }, metadata, { deadline: Date.now() + timeoutMs });
      let data: Buffer | undefined;
      let step = 0;
      let received = 0;
      const fail = (message: string): void => {
        call.cancel();
        reject(new FetchStateError(`FetchState from ${address}: ${message}`));
      };
      call.on('data', (piece: StateChunk__Output) => {
        if (!data) {
          if (piece.total_bytes > bufferConstants.MAX_LENGTH) return fail(`a state of ${piece.total_bytes} bytes does not fit in a Buffer`);
          data = Buffer.alloc(piece.total_bytes);
          step = piece.step;
        }
        if (piece.step !== step || piece.total_bytes !== data.length)
          return fail(`piece at offset ${piece.offset} says step ${piece.step} of ${piece.total_bytes} bytes, the first said step ${step} of ${data.length}`);
        if (piece.offset !== received) return fail(`piece at offset ${piece.offset}, expected ${received}`);
        if (received + piece.data.length > data.length) return fail(`pieces run past the announced ${data.length} bytes`);
        piece.data.copy(data, received);
        received += piece.data.length;
      });
      call.on('error', (err: grpc.ServiceError) =>
        reject(new FetchStateError(`FetchState from ${address}: ${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`)),
      );
      call.on('end', () => {
        if (!data) reject(new FetchStateError(`FetchState from ${address}: the stream ended without a piece`));
        else if (received !== data.length) reject(new FetchStateError(`FetchState from ${address}: got ${received} of ${data.length} bytes`));
        else resolve({ step, data });
      });
    });
  } finally {
    client.close();
  }
}
