/**
 * How a table's rows are split over the members (TorchRec's row-wise sharding): member r owns the
 * contiguous range [⌊r·R/W⌋, ⌊(r+1)·R/W⌋), so ranges differ by at most one row and a row's owner
 * follows from its id alone.
 */
export class RowShardPlan {
  constructor(
    /** R: rows of the whole table. */
    readonly rows: number,
    /** W: members the rows are split over. */
    readonly world: number,
  ) {
    if (!Number.isSafeInteger(rows) || rows < 0) throw new RangeError(`a table of ${rows} rows`);
    if (!Number.isSafeInteger(world) || world < 1) throw new RangeError(`rows split over ${world} members`);
  }

  /** Rows [start, end) of member `rank`. */
  range(rank: number): { start: number; end: number } {
    return { start: Math.floor((rank * this.rows) / this.world), end: Math.floor(((rank + 1) * this.rows) / this.world) };
  }

  /** The member that owns `row`; a row outside the table is a RangeError. */
  ownerOf(row: number): number {
    if (!Number.isInteger(row) || row < 0 || row >= this.rows) throw new RangeError(`row ${row} of a table of ${this.rows}`);
    // The estimate is off by at most one either way (the floors).
    let owner = Math.min(this.world - 1, Math.floor((row * this.world) / this.rows));
    while (this.range(owner).start > row) owner--;
    while (this.range(owner).end <= row) owner++;
    return owner;
  }
}
