import assert from 'node:assert/strict';
import test from 'node:test';
import { defaultConfig, type NatsConfig } from '../../common/config/mod.js';
import { makeTestPki, tempDir } from '../../testing/test-helpers.js';
import { UserError } from '../../common/user-error.js';
import { bankStreamNames, NatsBankStream, natsConnectionOptions } from './nats-bank-stream.js';
import { NatsTestServer } from '../../testing/nats-test-server.js';

function nats(over: Partial<NatsConfig>): NatsConfig {
  return { ...defaultConfig().nats, timeout_ms: 3000, ...over };
}

/** Opens the stream, publishes one message and reads it back. */
async function roundTrip(config: NatsConfig): Promise<void> {
  const stream = await NatsBankStream.open(config, 'auth', 100, 'test');
  try {
    const seq = await stream.publish(0, Uint8Array.from([1, 2, 3]), 'one');
    assert.equal(await stream.lastSeq(), seq);
    const got: number[][] = [];
    await stream.replay((m) => got.push([m.seq, m.producer, ...m.data]));
    assert.deepEqual(got, [[seq, 0, 1, 2, 3]]);
  } finally {
    await stream.close();
  }
}

async function refused(config: NatsConfig, pattern: RegExp): Promise<void> {
  await assert.rejects(
    NatsBankStream.open(config, 'auth', 100, 'test'),
    (err: Error) => err instanceof UserError && pattern.test(err.message) && !err.message.includes('\n'),
  );
}

test('stream and subject names follow docs/architecture.md §4, with the job name made safe for NATS', () => {
  assert.deepEqual(bankStreamNames('clicks-v2'), { stream: 'IB_BANK_clicks-v2', subjectPrefix: 'ib.clicks-v2.bank' });
  assert.deepEqual(bankStreamNames('a.b c>*'), { stream: 'IB_BANK_a_b_c__', subjectPrefix: 'ib.a_b_c__.bank' });
});

test('credentials and TLS files come from the config, else from NATS_USER / NATS_PASSWORD / NATS_TOKEN / NATS_TLS_*', () => {
  const env = { NATS_USER: 'env-user', NATS_PASSWORD: 'env-pass', NATS_TOKEN: 'env-token' };
  const fromEnv = natsConnectionOptions(nats({ url: 'nats://a:1, nats://b:2' }), 'w', env);
  assert.deepEqual(fromEnv.servers, ['nats://a:1', 'nats://b:2']);
  assert.deepEqual([fromEnv.user, fromEnv.pass, fromEnv.token], ['env-user', 'env-pass', 'env-token']);
  const fromConfig = natsConnectionOptions(nats({ url: 'nats://a:1', user: 'u', password: 'p', token: 't' }), 'w', env);
  assert.deepEqual([fromConfig.user, fromConfig.pass, fromConfig.token], ['u', 'p', 't']);
  assert.deepEqual(
    Object.keys(natsConnectionOptions(nats({ url: 'nats://a:1' }), 'w', {})).filter((k) => ['user', 'pass', 'token', 'tls'].includes(k)),
    [],
  );
  assert.throws(
    () => natsConnectionOptions(nats({ url: 'nats://a:1', tls_ca: '/nonexistent/ca.pem' }), 'w'),
    /nats\.tls_ca \/nonexistent\/ca\.pem: cannot read: ENOENT/,
  );
  assert.throws(
    () => natsConnectionOptions(nats({ url: 'nats://a:1' }), 'w', { NATS_TLS_CA: '/nonexistent/env-ca.pem' }),
    /nats\.tls_ca \/nonexistent\/env-ca\.pem: cannot read/,
  );
});

test('a server with user and password: the right ones connect, a wrong password is one clear line', async (t) => {
  const server = await NatsTestServer.start(t, { args: ['--user', 'bank', '--pass', 's3cret'] });
  await roundTrip(nats({ url: server.url, user: 'bank', password: 's3cret' }));
  await refused(
    nats({ url: server.url, user: 'bank', password: 'wrong' }),
    /^NATS nats:\/\/127\.0\.0\.1:\d+: cannot connect: .*(authorization|refused credentials)/i,
  );
});

test('a server with a token: the right token connects, none is refused', async (t) => {
  const server = await NatsTestServer.start(t, { args: ['--auth', 'tok-123'] });
  await roundTrip(nats({ url: server.url, token: 'tok-123' }));
  await refused(nats({ url: server.url }), /cannot connect/);
});

test('TLS with client certificates: a client of the same CA connects, one without a certificate is refused', async (t) => {
  const dir = tempDir(t);
  const pki = makeTestPki(dir, 'nats');
  const server = await NatsTestServer.start(t, { args: ['--tls', '--tlscert', pki.cert, '--tlskey', pki.key, '--tlsverify', '--tlscacert', pki.ca] });
  await roundTrip(nats({ url: server.url, tls_ca: pki.ca, tls_cert: pki.cert, tls_key: pki.key }));
  // The same files from the environment.
  const fromEnv = natsConnectionOptions(nats({ url: server.url }), 'w', { NATS_TLS_CA: pki.ca, NATS_TLS_CERT: pki.cert, NATS_TLS_KEY: pki.key });
  assert.deepEqual(
    [fromEnv.tls?.ca, fromEnv.tls?.cert, fromEnv.tls?.key].map((x) => x?.startsWith('-----BEGIN')),
    [true, true, true],
  );
  await refused(nats({ url: server.url, tls_ca: pki.ca }), /cannot connect/);
});

test('no server listening: one clear line naming the URL', async () => {
  await refused(nats({ url: 'nats://127.0.0.1:1', timeout_ms: 500 }), /^NATS nats:\/\/127\.0\.0\.1:1: cannot connect/);
});
