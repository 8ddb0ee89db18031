import { PeerServer, type PeerServerOptions } from '../worker/collective/peer-server.js';
import { RingReducer, type RingReducerOptions } from '../worker/collective/ring-reducer.js';

/** W workers in one process: a PeerServer and a RingReducer each, in one generation. */
export interface TestRing {
  servers: PeerServer[];
  reducers: RingReducer[];
  peers: string[];
  /** Closes every reducer and server (idempotent). */
  close(): Promise<void>;
}

/** Starts a ring of `world` in-process workers on 127.0.0.1, generation `generation`, closed when the test ends. */
export async function startTestRing(
  t: { after: (fn: () => Promise<void>) => void },
  world: number,
  opts: RingReducerOptions = {},
  { generation = 1, server = {} }: { generation?: number; server?: PeerServerOptions } = {},
): Promise<TestRing> {
  const servers = await Promise.all(Array.from({ length: world }, () => PeerServer.start({ closeGraceMs: 100, ...server })));
  const peers = servers.map((s) => s.address);
  const reducers = servers.map((s) => new RingReducer(s, opts));
  reducers.forEach((r, rank) => r.setTopology({ generation, rank, world, peers }));
  const close = async (): Promise<void> => {
    for (const r of reducers) r.close();
    await Promise.all(servers.map((s) => s.close()));
  };
  t.after(close);
  return { servers, reducers, peers, close };
}
