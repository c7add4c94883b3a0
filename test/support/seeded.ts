/**
 * Seeded randomness for kill tests: the moment of a kill is random, but printed and repeatable.
 */
import { randomInt } from 'node:crypto';

/** mulberry32: a small deterministic PRNG, uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The seed of a kill test: the environment variable `name` when set (to repeat a failed run), else a
 * random one. Prints it with `what` so that a failure in CI can be repeated.
 */
export function testSeed(what: string, name = 'LETTO_TEST_SEED'): number {
  const seed = Number(process.env[name] ?? randomInt(2 ** 31));
  console.log(`${what}: seed ${seed} (${name}=${seed} repeats it)`);
  return seed;
}
