// Seeded randomness for the mock: the same seed always gives the same faults and guest writes.

/** xorshift32: small, fast and fully determined by the seed. Returns numbers in [0, 1). */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}
