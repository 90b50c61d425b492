// A set of gfns as a sparse bitmap: one 4 KiB leaf per 32768 gfns, made when first touched, so
// a guest with a few populated pages far apart (a PVH guest's low memory and its MMIO holes)
// costs a few leaves, not a bitmap of the whole physical address space.

const LEAF_BITS = 1 << 15;

export class GfnSet {
  private readonly leaves = new Map<number, Uint8Array>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(gfn: number): boolean {
    const leaf = this.leaves.get(Math.floor(gfn / LEAF_BITS));
    if (!leaf) return false;
    const bit = gfn % LEAF_BITS;
    return (leaf[bit >> 3]! & (1 << (bit & 7))) !== 0;
  }

  /** Adds a gfn; true when it was not there yet. */
  add(gfn: number): boolean {
    const key = Math.floor(gfn / LEAF_BITS);
    let leaf = this.leaves.get(key);
    if (!leaf) this.leaves.set(key, (leaf = new Uint8Array(LEAF_BITS / 8)));
    const bit = gfn % LEAF_BITS;
    const mask = 1 << (bit & 7);
    if (leaf[bit >> 3]! & mask) return false;
    leaf[bit >> 3]! |= mask;
    this.count++;
    return true;
  }

  /** The gfns in ascending order. */
  toArray(): BigUint64Array {
    const out = new BigUint64Array(this.count);
    let at = 0;
    for (const key of [...this.leaves.keys()].sort((a, b) => a - b)) {
      const leaf = this.leaves.get(key)!;
      for (let i = 0; i < leaf.length; i++) {
        const b = leaf[i]!;
        if (!b) continue;
        for (let j = 0; j < 8; j++) if (b & (1 << j)) out[at++] = BigInt(key * LEAF_BITS + i * 8 + j);
      }
    }
    return out;
  }
}
