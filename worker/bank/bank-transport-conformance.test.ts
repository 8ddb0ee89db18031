import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import test, { type TestContext } from 'node:test';
import { defaultConfig } from '../../common/config/mod.js';
import { Rng } from '../../common/random.js';
import { encodeBankKeys, type BankEnvelope } from './bank-keys-codec.js';
import { InProcessBankLog, type BankStream, type StoredBankMessage } from './bank-stream.js';
import { KeyBank, type BankMessage } from './key-bank.js';
import { NatsBankStream } from './nats-bank-stream.js';
import { NatsTestServer } from '../../testing/nats-test-server.js';
import { startTestRing } from '../../testing/ring-test-helpers.js';
import type { BankTransport } from './bank-transport.js';
import { RingBankTransport } from './ring-bank-transport.js';
import { BankUnavailableError, StreamBankTransport, type StreamBankTransportOptions } from './stream-bank-transport.js';

// The same conformance tests for every transport of the bank: the embedded in-process log, NATS
// JetStream on a real nats-server, and the worker ring (keys all-gathered over real gRPC Peer
// streams). What only a stream can do (replay for a joiner, refuse forged messages) is tested on the
// two streams.

const DIM = 4;
const BATCH = 3;
const RUN = 'run-a';
/** The job's bank key, as Membership.bank_key brings it; ids of {@link keysOf} stay below ITEMS. */
const KEY = randomBytes(32);
const ITEMS = 1000;

/** Opens handles on one shared stream, as the workers of one job do. */
type StreamFactory = () => Promise<BankStream>;

/** Each kind of stream, kept to `perProducer` messages of each producer. */
const KINDS: { name: string; streams: (t: TestContext, perProducer?: number) => Promise<StreamFactory> }[] = [
  {
    name: 'in-process',
    streams: async (_t, perProducer = 1000) => {
      const log = new InProcessBankLog(perProducer);
      return async () => log.handle();
    },
  },
  {
    name: 'NATS',
    streams: async (t, perProducer = 1000) => {
      const server = await NatsTestServer.start(t);
      const config = { ...defaultConfig().nats, url: server.url, timeout_ms: 5000 };
      return () => NatsBankStream.open(config, 'conformance', perProducer, 'test');
    },
  },
];

/** Workers of one job, each with its transport; `regroup` forms a new generation of some of them. */
interface TransportGroup {
  transports: BankTransport[];
  /** Aborts rank `rank`'s wait for its peers (a membership change). */
  abort(rank: number, why: string): void;
  /** The transports of the ranks kept in generation `generation`, in their new rank order. */
  regroup(generation: number, keep: number[]): BankTransport[];
}

interface TransportKind {
  name: string;
  open(t: TestContext, n: number, over?: Partial<StreamBankTransportOptions>): Promise<TransportGroup>;
}

const streamKinds = KINDS.map(
  (kind): TransportKind => ({
    name: kind.name,
    open: async (t, n, over) => {
      const all = await openAll(t, await kind.streams(t), n, over);
      return { transports: all, abort: (rank, why) => all[rank]!.abort(why), regroup: (_generation, keep) => keep.map((i) => all[i]!) };
    },
  }),
);

const ringKind: TransportKind = {
  name: 'ring',
  open: async (t, n, over) => {
    const ring = await startTestRing(t, n, { timeoutMs: over?.timeoutMs ?? 5000 });
    const all = ring.reducers.map((r) => new RingBankTransport(r, over?.staleness ?? 0));
    return {
      transports: all,
      abort: (rank, why) => ring.reducers[rank]!.abort(why),
      regroup: (generation, keep) => {
        keep.forEach((i, rank) => ring.reducers[i]!.setTopology({ generation, rank, world: keep.length, peers: keep.map((k) => ring.peers[k]!) }));
        return keep.map((i) => all[i]!);
      },
    };
  },
};

/** Every transport, for the tests that hold for all of them. */
const ALL_KINDS: TransportKind[] = [...streamKinds, ringKind];

function options(over: Partial<StreamBankTransportOptions> = {}): StreamBankTransportOptions {
  return { runId: RUN, bankKey: KEY, dim: DIM, itemCount: ITEMS, capacity: 10, staleness: 0, timeoutMs: 5000, ...over };
}

async function openAll(t: TestContext, factory: StreamFactory, n: number, over: Partial<StreamBankTransportOptions> = {}): Promise<StreamBankTransport[]> {
  const all: StreamBankTransport[] = [];
  for (let i = 0; i < n; i++) all.push(await StreamBankTransport.open(await factory(), options(over)));
  t.after(() => Promise.all(all.map((x) => x.close())));
  return all;
}

/** Unit keys that say who made them: producer, step and row. */
function keysOf(step: number, producer: number): BankMessage {
  const rng = new Rng(step * 31 + producer);
  const keys = new Float32Array(BATCH * DIM);
  for (let i = 0; i < keys.length; i++) keys[i] = rng.normal();
  return { keys, ids: Int32Array.from({ length: BATCH }, (_, i) => step * 100 + producer * 10 + i), step, producer };
}

/** Every worker runs `steps` steps in `generation`: exchange, then apply what came back (as at commit). */
async function runSteps(workers: BankTransport[], banks: KeyBank[], steps: number[], generation = 1): Promise<BankMessage[][][]> {
  const got: BankMessage[][][] = [];
  for (const step of steps) {
    const round = { generation, world: workers.length };
    const sets = await Promise.all(workers.map((w, rank) => w.exchange(keysOf(step, rank), round)));
    sets.forEach((set, rank) => set.forEach((m) => banks[rank]!.enqueue(m)));
    got.push(sets);
  }
  return got;
}

for (const kind of ALL_KINDS) {
  test(`${kind.name}: every replica gets every producer's keys of a step in producer order and holds the same keys`, async (t) => {
    const workers = (await kind.open(t, 3)).transports;
    const banks = workers.map(() => new KeyBank(10, DIM));
    const got = await runSteps(workers, banks, [1, 2, 3, 4, 5]);
    for (const [i, sets] of got.entries()) {
      for (const set of sets) {
        assert.deepEqual(
          set.map((m) => [m.step, m.producer]),
          [0, 1, 2].map((p) => [i + 1, p]),
        );
        assert.deepEqual(Array.from(set[1]!.keys), Array.from(keysOf(i + 1, 1).keys));
        assert.deepEqual(Array.from(set[2]!.ids), Array.from(keysOf(i + 1, 2).ids));
      }
    }
    assert.equal(new Set(banks.map((b) => b.digest())).size, 1);
    assert.equal(banks[0]!.filled, 10);
    // The newest key is producer 2's last row of step 5.
    assert.equal(banks[0]!.ids[(banks[0]!.head + 9) % 10], 522);
    assert.ok(workers.every((w) => Object.values(w.dropped).every((n) => n === 0)));
    // A stream's transports have read its messages; the ring has no stream.
    assert.ok(workers.every((w) => !(w instanceof StreamBankTransport) || w.position > 0));
  });

  test(`${kind.name}: with a staleness bound s, step t returns step t−s's keys and replicas still agree`, async (t) => {
    const workers = (await kind.open(t, 2, { staleness: 2, capacity: 20 })).transports;
    const banks = workers.map(() => new KeyBank(20, DIM));
    const got = await runSteps(workers, banks, [1, 2, 3, 4]);
    assert.deepEqual(
      got.map((sets) => sets[0]!.map((m) => m.step)),
      [[], [], [1, 1], [2, 2]],
    );
    assert.equal(banks[0]!.digest(), banks[1]!.digest());
    assert.equal(banks[0]!.filled, 2 * 2 * BATCH);
  });

  test(`${kind.name}: a step redone in a new generation takes that generation's keys`, async (t) => {
    const group = await kind.open(t, 3);
    const workers = group.transports;
    const banks = workers.map(() => new KeyBank(10, DIM));
    await runSteps(workers, banks, [1, 2]);
    // Step 3 in generation 1: producers 0 and 1 publish, producer 2 dies before it does.
    const round = { generation: 1, world: 3 };
    const waits = [workers[0]!.exchange(keysOf(3, 0), round), workers[1]!.exchange(keysOf(3, 1), round)];
    await new Promise((r) => setTimeout(r, 100));
    group.abort(0, 'membership changed');
    group.abort(1, 'membership changed');
    for (const w of waits) await assert.rejects(w, /membership changed/);
    // Generation 2 of the two survivors redoes step 3, then step 4.
    const survivors = group.regroup(2, [0, 1]);
    const got = await runSteps(survivors, banks, [3, 4], 2);
    assert.deepEqual(
      got[0]![0]!.map((m) => m.producer),
      [0, 1],
    );
    assert.deepEqual(Array.from(got[0]![0]![1]!.ids), Array.from(keysOf(3, 1).ids));
    assert.equal(banks[0]!.digest(), banks[1]!.digest());
  });
}

for (const kind of KINDS) {
  test(`${kind.name}: a joiner rebuilds the replica of the others from the stream alone`, async (t) => {
    const factory = await kind.streams(t);
    const workers = await openAll(t, factory, 2);
    const banks = workers.map(() => new KeyBank(10, DIM));
    await runSteps(workers, banks, [1, 2, 3, 4]);
    const [joiner] = await openAll(t, factory, 1);
    const rebuilt = new KeyBank(10, DIM);
    assert.equal(await joiner!.rebuild(rebuilt, 4), true);
    assert.equal(rebuilt.digest(), banks[0]!.digest());
    // … and takes part in step 5 of generation 2 like the others.
    const all = [...workers, joiner!];
    const bankOf = [banks[0]!, banks[1]!, rebuilt];
    await runSteps(all, bankOf, [5], 2);
    assert.equal(new Set(bankOf.map((b) => b.digest())).size, 1);
  });

  test(`${kind.name}: bad messages are dropped and counted, never applied`, async (t) => {
    const factory = await kind.streams(t);
    const [worker] = await openAll(t, factory, 1);
    const raw = await factory();
    t.after(() => raw.close());
    const bank = new KeyBank(10, DIM);
    assert.equal(await worker!.rebuild(bank, 0), true, 'a new job starts from an empty bank');
    const good: BankEnvelope = { ...keysOf(1, 0), runId: RUN, generation: 1, world: 1 };
    const nan = { ...good, keys: good.keys.slice() };
    nan.keys[2] = Number.NaN;
    const signed = (m: BankEnvelope, key: Uint8Array = KEY) => encodeBankKeys(m, key).data;
    const bad: [number, Uint8Array][] = [
      [0, signed(good, randomBytes(32))], // signed by someone without the job's key
      [0, Uint8Array.from([0xff, 0xff, 0xff])], // not even a signed envelope
      [0, signed({ ...good, keys: new Float32Array(BATCH * 3), producer: 0 })], // keys of dim 3
      [0, signed(nan)],
      [0, signed({ ...good, ids: Int32Array.of(1, ITEMS, 2) })], // an item id past the data's
      [0, signed({ ...good, ids: Int32Array.of(1, -7, 2) })],
      [0, signed({ ...good, producer: 1 })], // names another producer than its subject
      [3, signed({ ...good, producer: 3, world: 2 })], // outside its generation
      [0, signed({ ...good, step: 50 })], // from the future
      [0, signed({ ...good, runId: 'another-run' })],
    ];
    for (const [i, [producer, data]] of bad.entries()) await raw.publish(producer, data, `bad-${i}`);
    const set = await worker!.exchange(keysOf(1, 0), { generation: 1, world: 1 });
    set.forEach((m) => bank.enqueue(m));
    // Wait until every bad message has been read too.
    for (let i = 0; i < 100 && worker!.position < bad.length + 1; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(worker!.dropped, {
      unauthenticated: 2,
      malformed: 0,
      other_run: 1,
      wrong_dim: 1,
      nan_key: 1,
      bad_item_id: 2,
      unknown_producer: 2,
      future_step: 1,
      duplicate: 0,
    });
    assert.equal(set.length, 1);
    assert.equal(bank.filled, BATCH);
    assert.ok(Array.from(bank.keys.subarray(0, BATCH * DIM)).every(Number.isFinite));
  });

  test(`${kind.name}: a forgery published first, even under the genuine message's id, neither pre-empts nor replaces the genuine keys`, async (t) => {
    const factory = await kind.streams(t);
    const [worker] = await openAll(t, factory, 1);
    const forger = await factory();
    t.after(() => forger.close());
    const forged: BankEnvelope = { ...keysOf(1, 0), ids: Int32Array.of(7, 7, 7), runId: RUN, generation: 1, world: 1 };
    // Without the key a forger cannot sign, nor know the MAC that ends the genuine id: it tries the rest of it.
    for (const id of [`${RUN}.1.1.0`, `${RUN}.1.1.0.`, 'x']) await forger.publish(0, encodeBankKeys(forged, randomBytes(32)).data, id);
    const set = await worker!.exchange(keysOf(1, 0), { generation: 1, world: 1 });
    assert.equal(set.length, 1);
    assert.deepEqual(Array.from(set[0]!.ids), Array.from(keysOf(1, 0).ids));
    assert.equal(worker!.dropped.unauthenticated, 3);
  });

  test(`${kind.name}: a flood of one producer's subject evicts only that subject's messages`, async (t) => {
    const stream = await (await kind.streams(t, 10))();
    t.after(() => stream.close());
    for (let i = 0; i < 3; i++) await stream.publish(1, Uint8Array.of(1, i), `genuine-${i}`);
    for (let i = 0; i < 50; i++) await stream.publish(0, Uint8Array.of(0, i), `flood-${i}`);
    const kept: StoredBankMessage[] = [];
    await stream.replay((m) => kept.push(m));
    assert.deepEqual(
      kept.filter((m) => m.producer === 1).map((m) => m.data[1]),
      [0, 1, 2],
    );
    assert.deepEqual(
      kept.filter((m) => m.producer === 0).map((m) => m.data[1]),
      Array.from({ length: 10 }, (_, i) => 40 + i),
    );
  });

  test(`${kind.name}: a producer that never publishes ends the wait with a clear error after the timeout`, async (t) => {
    const [worker] = await openAll(t, await kind.streams(t), 1, { timeoutMs: 300 });
    await assert.rejects(
      worker!.exchange(keysOf(1, 0), { generation: 1, world: 2 }),
      (err: Error) => err instanceof BankUnavailableError && /step 1 .*missing producers 1/.test(err.message),
    );
  });
}

for (const kind of ALL_KINDS) {
  test(`${kind.name}: a checkpoint's pending keys let a resumed transport add the staleness window's keys on time`, async (t) => {
    const [a] = (await kind.open(t, 1, { staleness: 2, capacity: 40 })).transports;
    const bankA = new KeyBank(40, DIM);
    await runSteps([a!], [bankA], [1, 2, 3, 4]);
    const pending = a!.pending(4);
    assert.deepEqual(
      pending.map((p) => [p.step, p.producer, p.generation, p.world]),
      [
        [3, 0, 1, 1],
        [4, 0, 1, 1],
      ],
    );
    // A fresh transport on an empty stream, as after a restart: the bank and the window come from the checkpoint.
    const [b] = (await kind.open(t, 1, { staleness: 2, capacity: 40 })).transports;
    b!.restorePending(pending);
    const bankB = new KeyBank(40, DIM);
    bankB.restore(bankA.keys.slice(), bankA.ids.slice(), bankA.steps.slice(), bankA.head, bankA.filled);
    const gotA = await runSteps([a!], [bankA], [5, 6]);
    const gotB = await runSteps([b!], [bankB], [5, 6]);
    assert.deepEqual(
      gotB.map((s) => s[0]!.map((m) => m.step)),
      [[3], [4]],
    );
    assert.deepEqual(
      gotB.map((s) => s[0]!.map((m) => Array.from(m.ids))),
      gotA.map((s) => s[0]!.map((m) => Array.from(m.ids))),
    );
    assert.equal(bankB.digest(), bankA.digest());
  });
}
