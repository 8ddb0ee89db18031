/**
 * Who is in the job: the members of the current generation in rank order, the joiners waiting for
 * the next one, and the generation number. Pure bookkeeping: the coordinator server decides when a
 * new generation forms (a step boundary) and tells the workers.
 */

/** A worker the coordinator knows: a member of the current generation, or a joiner waiting for the next. */
export interface WorkerEntry {
  /** Stable identity of the worker process (JoinRequest.worker_id). */
  readonly workerId: string;
  /** host:port where the worker serves Peer. */
  readonly peerAddress: string;
  /** SHA-256 of the session credential its Join issued, which its every later call must carry. */
  readonly sessionDigest: Buffer;
  /** `performance.now()` when the coordinator last heard from the worker (Join, ping or RPC). */
  lastHeard: number;
}

/** Why a worker stopped being a member. */
export const REMOVAL_CAUSES = ['left', 'heartbeat_timeout', 'rejoined'] as const;
/** One of {@link REMOVAL_CAUSES}: `rejoined` is a member whose process restarted and joined again. */
export type RemovalCause = (typeof REMOVAL_CAUSES)[number];

/** A member that was removed, and why. */
export interface Removal {
  /** The removed entry (the worker may be a member again under a new entry, after `rejoined`). */
  entry: WorkerEntry;
  /** Why it was removed. */
  cause: RemovalCause;
}

/** What changed when a generation formed. */
export interface GenerationChange {
  /** The new generation's number. */
  generation: number;
  /** Its members in rank order (may be empty when every member left). */
  members: readonly WorkerEntry[];
  /** Members added, in rank order (appended after the members that stayed). */
  joined: readonly WorkerEntry[];
  /** Members of the previous generation that are not in this one. */
  removed: readonly Removal[];
}

/**
 * The membership of a job. Generations are numbered from `lastGeneration + 1`; a new one forms from
 * the members that stay, in their order, followed by the admitted joiners in join order, so the
 * ranks of the members that stay only shift down past removed ones and rank 0 keeps the state as
 * long as any old member does.
 */
export class Roster {
  private gen: number;
  private current: WorkerEntry[] = [];
  private waiting: WorkerEntry[] = [];
  private removals: Removal[] = [];

  /** `lastGeneration`: the last generation formed before (0 for a new job). */
  constructor(lastGeneration: number) {
    this.gen = lastGeneration;
  }

  /** The current generation's number (the constructor's value until one forms). */
  get generation(): number {
    return this.gen;
  }

  /** Members of the current generation in rank order, without any removed since it formed. */
  get members(): readonly WorkerEntry[] {
    return this.current;
  }

  /** Joiners waiting for a generation, in join order. */
  get pending(): readonly WorkerEntry[] {
    return this.waiting;
  }

  /** True when members were removed since the current generation formed: the next {@link form} makes a new one. */
  get removing(): boolean {
    return this.removals.length > 0;
  }

  /** The member with this worker id, if any. */
  member(workerId: string): WorkerEntry | undefined {
    return this.current.find((m) => m.workerId === workerId);
  }

  /** The rank of a member in the current generation, or -1. */
  rankOf(entry: WorkerEntry): number {
    return this.current.indexOf(entry);
  }

  /**
   * Adds a joiner to the end of the queue. A waiting joiner with the same worker id is replaced (the
   * process restarted while its first Join was still waiting) and returned.
   */
  addPending(entry: WorkerEntry): WorkerEntry | undefined {
    const old = this.waiting.find((w) => w.workerId === entry.workerId);
    if (old !== undefined) this.withdraw(old);
    this.waiting.push(entry);
    return old;
  }

  /** Drops a waiting joiner (its Join gave up); false when it was not waiting. */
  withdraw(entry: WorkerEntry): boolean {
    const i = this.waiting.indexOf(entry);
    if (i < 0) return false;
    this.waiting.splice(i, 1);
    return true;
  }

  /** Removes a member; the next {@link form} makes a generation without it. */
  remove(workerId: string, cause: RemovalCause): WorkerEntry | undefined {
    const entry = this.member(workerId);
    if (entry === undefined) return undefined;
    this.current = this.current.filter((m) => m !== entry);
    this.removals.push({ entry, cause });
    return entry;
  }

  /**
   * Forms the next generation when the membership changed: members were removed, or `admit` is true
   * and joiners wait (they are all admitted). Returns what changed, or null when nothing did.
   */
  form(admit: boolean): GenerationChange | null {
    const joined = admit ? this.waiting : [];
    if (joined.length === 0 && this.removals.length === 0) return null;
    this.gen += 1;
    this.current = [...this.current, ...joined];
    this.waiting = admit ? [] : this.waiting;
    const change: GenerationChange = { generation: this.gen, members: this.current, joined, removed: this.removals };
    this.removals = [];
    return change;
  }
}
