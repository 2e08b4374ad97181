/**
 * Seeded randomness for tests and the soak: the same seed gives the same
 * sequence on every run, so a failure can be replayed from its printed seed.
 *
 * @module
 */

/**
 * A seeded PRNG (mulberry32).
 *
 * @param seed Any number; only its low 32 bits matter.
 * @returns A function giving floats in [0, 1).
 */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
