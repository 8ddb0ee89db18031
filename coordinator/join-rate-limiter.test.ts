import assert from 'node:assert/strict';
import test from 'node:test';
import { JoinRateLimiter, peerHost } from './join-rate-limiter.js';

test('a burst per host, then the rate; hosts do not share buckets; refilled hosts are forgotten', () => {
  const limiter = new JoinRateLimiter(3, 2);
  assert.deepEqual(
    [0, 0, 0, 0].map(() => limiter.take('a', 0)),
    [true, true, true, false],
  );
  assert.equal(limiter.take('b', 0), true, 'another host has its own burst');
  assert.equal(limiter.take('a', 400), false, '0.8 of a token');
  assert.equal(limiter.take('a', 500), true, 'one token after half a second at 2/s');
  assert.equal(limiter.take('a', 500), false);
  limiter.forgetIdle(10_000);
  assert.deepEqual(
    [0, 0, 0, 0].map(() => limiter.take('a', 10_000)),
    [true, true, true, false],
  );
});

test('peerHost drops the port of every form gRPC gives', () => {
  assert.equal(peerHost('127.0.0.1:5000'), '127.0.0.1');
  assert.equal(peerHost('ipv4:10.0.0.7:5000'), '10.0.0.7');
  assert.equal(peerHost('[::1]:5000'), '[::1]');
  assert.equal(peerHost('ipv6:[fe80::1]:443'), '[fe80::1]');
  assert.equal(peerHost('unix:/tmp/sock'), 'unix:/tmp/sock');
});
