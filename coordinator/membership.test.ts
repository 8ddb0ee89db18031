import test from 'node:test';
import assert from 'node:assert/strict';
import { Roster, type WorkerEntry } from './membership.js';

function entry(workerId: string): WorkerEntry {
  return { workerId, peerAddress: `${workerId}:1`, sessionDigest: Buffer.alloc(32), lastHeard: 0 };
}

const ids = (entries: readonly WorkerEntry[]): string[] => entries.map((e) => e.workerId);

test('members that stay keep their order, joiners are appended, generations count up', () => {
  const roster = new Roster(4);
  for (const id of ['a', 'b', 'c']) roster.addPending(entry(id));
  assert.equal(roster.form(false), null, 'joiners wait until admitted');
  const first = roster.form(true)!;
  assert.deepEqual([first.generation, ids(first.members), ids(first.joined)], [5, ['a', 'b', 'c'], ['a', 'b', 'c']]);
  assert.deepEqual(roster.pending, []);

  roster.addPending(entry('d'));
  roster.remove('a', 'heartbeat_timeout');
  assert.equal(roster.removing, true);
  const second = roster.form(true)!;
  assert.deepEqual([second.generation, ids(second.members), ids(second.joined)], [6, ['b', 'c', 'd'], ['d']]);
  assert.deepEqual(
    second.removed.map((r) => [r.entry.workerId, r.cause]),
    [['a', 'heartbeat_timeout']],
  );
  assert.equal(roster.rankOf(roster.member('d')!), 2);
  assert.equal(roster.form(true), null, 'nothing changed');
});

test('a second Join of a waiting worker replaces the first; a withdrawn joiner is forgotten', () => {
  const roster = new Roster(0);
  const first = entry('a');
  roster.addPending(first);
  const second = entry('a');
  assert.equal(roster.addPending(second), first);
  assert.deepEqual(roster.pending, [second]);
  assert.equal(roster.withdraw(first), false);
  assert.equal(roster.withdraw(second), true);
  assert.equal(roster.form(true), null);
});
