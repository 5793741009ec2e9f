/**
 * Shared plumbing for the property-based fuzz suites (test/unit/fuzz-*.test.ts).
 *
 * Every property runs a bounded number of inputs from a fixed seed, so CI is reproducible:
 *   FUZZ_RUNS=200000 node --test dist/test/unit/fuzz-*.test.js   a longer run (every property gets that many inputs)
 *   FUZZ_SEED=7 ...                                               another seed (a failure prints seed and path)
 *   FUZZ_SEED=7 FUZZ_PATH="12:0:3" ... --test-name-pattern=...    replay one counterexample
 * On failure fast-check shrinks the input and the test fails with the counterexample.
 *
 * Hang guard, in three layers (a synchronous parser cannot be interrupted from its own thread):
 *  - each input gets FUZZ_INPUT_MS (default 1000 ms) of wall-clock time; a slower one fails the property
 *    (and is shrunk like any other counterexample): this catches super-linear blow-ups;
 *  - each property gets FUZZ_PROPERTY_MS in total (default: 20 s, or 5 ms per input for long runs) through
 *    fast-check's interruptAfterTimeLimit plugin, with failOnInterrupt: a property that got slow fails;
 *  - a watchdog thread watches a heartbeat the runner bumps before each input: if one input runs for
 *    FUZZ_HANG_MS (default 10 s), i.e. a real infinite loop, it prints the property, seed and input number
 *    to stderr and kills the test process, so the run fails instead of blocking forever.
 */
import { Worker } from 'node:worker_threads';
import type { TestContext } from 'node:test';
import fc from 'fast-check';

const env = process.env;
export const FUZZ_SEED = Number(env.FUZZ_SEED ?? 42);
const INPUT_MS = Number(env.FUZZ_INPUT_MS ?? 1000);
const HANG_MS = Number(env.FUZZ_HANG_MS ?? 10_000);

/** Inputs per property: FUZZ_RUNS when set, else the property's own default (chosen to keep each file near 2-3 s). */
export function fuzzRuns(defaultRuns: number): number {
  return Number(env.FUZZ_RUNS ?? defaultRuns);
}

/** The fast-check parameters every fuzz property uses: bounded runs, fixed seed, a total time limit. */
export function fuzzParams<T>(defaultRuns: number): fc.Parameters<T> {
  const numRuns = fuzzRuns(defaultRuns);
  const limitMs = Number(env.FUZZ_PROPERTY_MS ?? Math.max(20_000, 5 * numRuns));
  return {
    numRuns,
    seed: FUZZ_SEED,
    ...(env.FUZZ_PATH ? { path: env.FUZZ_PATH } : {}),
    includeErrorInReport: true,
    plugins: [fc.interruptAfterTimeLimit(limitMs, { failOnInterrupt: true }) as fc.Plugin<T>],
  };
}

// ------------------------------------------------------------------------------------------ watchdog

/** [0] heartbeat, [1] active, [2] input number, [3] name length; then the property name (UTF-8). */
let shared: { ints: Int32Array; name: Uint8Array } | undefined;

const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const ints = new Int32Array(workerData.sab, 0, 4);
const name = new Uint8Array(workerData.sab, 16);
let last = -1;
let since = Date.now();
setInterval(() => {
  const beat = Atomics.load(ints, 0);
  if (beat !== last || Atomics.load(ints, 1) === 0) { last = beat; since = Date.now(); return; }
  if (Date.now() - since < workerData.hangMs) return;
  const prop = Buffer.from(name.subarray(0, Atomics.load(ints, 3))).toString('utf8');
  const n = Atomics.load(ints, 2);
  fs.writeSync(2, '\\nFUZZ HANG: property "' + prop + '" has been stuck on input ' + n + ' for ' + workerData.hangMs +
    ' ms; killing the test process. Replay: FUZZ_SEED=' + workerData.seed + ' FUZZ_PATH=' + n +
    ' --test-name-pattern=... (if the input number is below the run count; past it, it was a shrink step).\\n');
  process.kill(process.pid, 'SIGKILL');
}, 250);
`;

function watchdog(): { ints: Int32Array; name: Uint8Array } {
  if (!shared) {
    const sab = new SharedArrayBuffer(16 + 256);
    shared = { ints: new Int32Array(sab, 0, 4), name: new Uint8Array(sab, 16) };
    new Worker(WATCHDOG, { eval: true, workerData: { sab, hangMs: HANG_MS, seed: FUZZ_SEED } }).unref();
  }
  return shared;
}

// ---------------------------------------------------------------------------------------------- runner

/**
 * Check `predicate` (which throws or returns false on a violation) on `defaultRuns` inputs from `arb`
 * (FUZZ_RUNS overrides), with the hang guards above. Reports the number of inputs as a test diagnostic.
 */
export function fuzz<T>(t: TestContext, arb: fc.Arbitrary<T>, predicate: (input: T) => boolean | void, defaultRuns: number): void {
  const w = watchdog();
  const label = Buffer.from(t.name, 'utf8').subarray(0, 256);
  w.name.set(label);
  Atomics.store(w.ints, 3, label.length);
  Atomics.store(w.ints, 2, 0);
  Atomics.store(w.ints, 1, 1);
  let n = 0;
  const timed = (input: T): boolean | void => {
    Atomics.store(w.ints, 2, n++);
    Atomics.add(w.ints, 0, 1);
    const t0 = performance.now();
    const r = predicate(input);
    const ms = performance.now() - t0;
    if (ms > INPUT_MS) throw new Error(`hang guard: one input took ${ms.toFixed(0)} ms (FUZZ_INPUT_MS=${INPUT_MS})`);
    return r;
  };
  let details: fc.RunDetails<[T]>;
  try {
    details = fc.check(fc.property(arb, timed), fuzzParams<[T]>(defaultRuns));
  } finally {
    Atomics.store(w.ints, 1, 0);
  }
  t.diagnostic(`fuzz: ${details.numRuns} inputs, seed ${FUZZ_SEED}${details.numShrinks ? `, ${details.numShrinks} shrinks` : ''}`);
  if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? 'property failed');
}

// ------------------------------------------------------------------------------------------- mutation

/** One edit of a byte string; positions are taken modulo the length, so they shrink toward the start. */
export type ByteMutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'word'; at: number; size: 2 | 4; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'duplicate'; at: number; count: number }
  | { op: 'append'; bytes: Uint8Array };

/** Values parsers tend to mishandle: zero, sign bits, all ones. */
const EDGE_BYTE = fc.oneof(fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xff), fc.integer({ min: 0, max: 255 }));
const EDGE_WORD = fc.oneof(fc.constantFrom(0, 1, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));

export const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: EDGE_BYTE }),
  fc.record({ op: fc.constant('word' as const), at: fc.nat(), size: fc.constantFrom(2 as const, 4 as const), value: EDGE_WORD }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
);

/** Apply edits to a copy of `input`. */
export function mutateBytes(input: Uint8Array, edits: readonly ByteMutation[]): Buffer {
  let b = Buffer.from(input);
  for (const e of edits) {
    const at = e.op === 'append' ? 0 : e.at % (b.length + 1);
    switch (e.op) {
      case 'flip':
        if (b.length) b[at % b.length]! ^= 1 << e.bit;
        break;
      case 'set':
        if (b.length) b[at % b.length] = e.value;
        break;
      case 'word':
        if (b.length >= e.size) {
          const o = at % (b.length - e.size + 1);
          if (e.size === 2) b.writeUInt16BE(e.value & 0xffff, o);
          else b.writeUInt32BE(e.value >>> 0, o);
        }
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), e.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.count)]);
        break;
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, at + e.count), b.subarray(at)]);
        break;
      case 'append':
        b = Buffer.concat([b, e.bytes]);
        break;
    }
  }
  return Buffer.from(b); // a fresh buffer exactly the input's size, as a datagram would be
}

/** Valid inputs from `base`, then 1-8 edits of them. */
export function mutated(base: fc.Arbitrary<Uint8Array>, maxEdits = 8): fc.Arbitrary<Buffer> {
  return fc.tuple(base, fc.array(byteMutation, { minLength: 1, maxLength: maxEdits })).map(([b, edits]) => mutateBytes(b, edits));
}

/** One edit of a text, with the tokens text parsers trip on. */
export type TextMutation =
  | { op: 'insert'; at: number; text: string }
  | { op: 'delete'; at: number; count: number }
  | { op: 'replace'; at: number; count: number; text: string }
  | { op: 'duplicate'; at: number; count: number }
  | { op: 'truncate'; at: number };

export const HOSTILE_TOKENS = [
  '', ' ', '  ', '\t', '\r', '\n', '\r\n', '\r\n\r\n', '\0', ':', '=', '/', ';', '@', '%', '%zz', '%E0', '<', '>', '"', '\\',
  '0', '-1', '1e3', '0x10', '65535', '65536', '4294967296', '99999999999999999999999', 'NaN', 'Infinity',
  '__proto__', 'constructor', 'toString', '\u00e9', '\u2028', '\uD800', '\uFFFD', '\u{1F600}',
];

const hostileText = fc.oneof(fc.constantFrom(...HOSTILE_TOKENS), fc.string({ maxLength: 12, unit: 'binary' }));

export const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: hostileText }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ op: fc.constant('replace' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }), text: hostileText }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

export function mutateText(input: string, edits: readonly TextMutation[]): string {
  let s = input;
  for (const e of edits) {
    const at = e.at % (s.length + 1);
    switch (e.op) {
      case 'insert':
        s = s.slice(0, at) + e.text + s.slice(at);
        break;
      case 'delete':
        s = s.slice(0, at) + s.slice(at + e.count);
        break;
      case 'replace':
        s = s.slice(0, at) + e.text + s.slice(at + e.count);
        break;
      case 'duplicate':
        s = s.slice(0, at + e.count) + s.slice(at);
        break;
      case 'truncate':
        s = s.slice(0, at);
        break;
    }
  }
  return s;
}

export function mutatedText(base: fc.Arbitrary<string>, maxEdits = 6): fc.Arbitrary<string> {
  return fc.tuple(base, fc.array(textMutation, { minLength: 1, maxLength: maxEdits })).map(([s, edits]) => mutateText(s, edits));
}

/** Cut `b` at the given points (taken modulo its length): the TCP segments a stream parser may see. */
export function splitAt(b: Uint8Array, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) out.push(Buffer.from(b.subarray(from, p)));
    from = Math.max(from, p);
  }
  if (from < b.length || out.length === 0) out.push(Buffer.from(b.subarray(from)));
  return out;
}

/** Private state a test reads to check a memory bound (the bound is the module's; the field name is its detail). */
export function peek<T>(obj: object, field: string): T {
  return (obj as Record<string, unknown>)[field] as T;
}
