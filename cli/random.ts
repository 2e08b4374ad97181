/**
 * The seeded randomness behind `ctx.random()`: sfc32 (Chris Doty-Humphrey's
 * Small Fast Chaotic generator, 128 bits of state), seeded through
 * splitmix32 so that neighbouring seeds give unrelated sequences. Not for
 * cryptography; for reproducible workloads.
 *
 * @module
 */

/**
 * Makes a generator.
 *
 * @param seed A 32-bit unsigned integer; the same seed gives the same
 *   sequence.
 * @returns A function giving floats in [0, 1) with 32 random bits.
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) | 0;
  };
  let a = split(), b = split(), c = split(), d = split();
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next(); // mix the seed in before first use
  return next;
}
