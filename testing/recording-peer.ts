import * as grpc from '@grpc/grpc-js';
import { PeerService } from '../common/proto.js';
import type { Chunk__Output } from '../proto/generated/infobound/v1/Chunk.js';
import type { ChunkAck } from '../proto/generated/infobound/v1/ChunkAck.js';

/**
 * A bare Peer service standing in for a ring member: records the Collective chunks it receives and
 * acknowledges each at once. It serves no data plane (OpenDataLink is UNIMPLEMENTED), so a sender
 * reaches it over the Collective call. Shut down when the test ends.
 */
export async function recordingPeer(t: { after: (fn: () => void) => void }): Promise<{ address: string; received: Chunk__Output[] }> {
  const received: Chunk__Output[] = [];
  const server = new grpc.Server();
  server.addService(PeerService.service, {
    Collective: (call: grpc.ServerDuplexStream<Chunk__Output, ChunkAck>) => {
      call.on('data', (c: Chunk__Output) => {
        received.push(c);
        call.write({ step: c.step, phase: c.phase, offset: c.offset });
      });
      call.on('end', () => call.end());
    },
    FetchState: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.after(() => server.forceShutdown());
  return { address: `127.0.0.1:${port}`, received };
}
