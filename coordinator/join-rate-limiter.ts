/**
 * How often Joins are let through, per calling host: a token bucket per host, so that a flood of
 * Joins from one place (an intruder, a crash-looping pod) neither admits a crowd of members nor
 * keeps workers on other hosts out. A refused Join is retried by a correct worker with backoff.
 */
export class JoinRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /**
   * `burst` Joins at once from a host, then `perSecond` a second. A host that has not called for a
   * while is forgotten, so the map stays as small as the set of hosts calling now.
   */
  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {}

  /** Takes one Join's token for `host` at time `now` (ms); false when its bucket is empty. */
  take(host: string, now: number): boolean {
    const bucket = this.buckets.get(host) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    this.buckets.set(host, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Forgets the hosts whose buckets have refilled by `now`: they are as new callers again. */
  forgetIdle(now: number): void {
    for (const [host, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(host);
  }
}

/** The calling host of a gRPC peer string (`127.0.0.1:5000`, `ipv4:…`, `[::1]:5000`): the address without its port. */
export function peerHost(peer: string): string {
  if (peer.startsWith('unix:')) return peer;
  const address = peer.replace(/^ipv[46]:/, '');
  if (address.startsWith('[')) return address.slice(0, address.indexOf(']') + 1);
  const colon = address.indexOf(':');
  // One colon: host and port; none or several (a bare IPv6 address): as it is.
  return colon >= 0 && colon === address.lastIndexOf(':') ? address.slice(0, colon) : address;
}
