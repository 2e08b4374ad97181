/**
 * Exhaustive model checker for the lazy-wake protocol of `runtime/wake.ts`.
 *
 * ## What is modelled
 *
 * One waiter (the loop) and a few producers run over simulated shared memory.
 * JS `Atomics` are sequentially consistent, so memory is a set of plain values
 * and one scheduler step is one atomic access. The checker explores every
 * interleaving by depth-first search, memoizing states, and returns the first
 * counterexample it finds for each property together with its trace (one label
 * per step, in execution order).
 *
 * Shared words: `TAIL` (number of push exchanges so far; slot `i` belongs to
 * the `i`-th exchange), a per-slot link flag (`LINKED`), `WAIT_NR` (`IDLE` or
 * the armed threshold), `ADDED`, and the futex state of the sleeping waiter.
 * The consumer can reach the longest prefix of linked slots, exactly as a
 * Vyukov queue consumer stops at the first slot whose link store is missing.
 *
 * ## Mapping to `runtime/wake.ts` (one line = one atomic step)
 *
 * Waiter, one wait cycle with threshold `k`:
 *
 * | step | action                                                            |
 * | ---- | ----------------------------------------------------------------- |
 * | W1   | store `ADDED = 0`                                                 |
 * | W2   | store `WAIT_NR = k` (arming)                                      |
 * | W3   | load `TAIL`; more than consumed → not empty, go to W6             |
 * | W4   | futex wait on `WAIT_NR` expecting `k`: not-equal → W6, else block |
 * | W5   | woken (by a notify, or by a timeout when `timeout` is set)        |
 * | W6   | `compareExchange(WAIT_NR, k, IDLE)` (disarm)                      |
 * | W7   | pop every reachable slot; unless all pushes are consumed, go to W1 |
 *
 * Producer, one push (lazy or eager):
 *
 * | step | action                                                       |
 * | ---- | ------------------------------------------------------------ |
 * | P1   | exchange on `TAIL` (takes the next slot)                     |
 * | P2   | store the slot's link                                        |
 * | P3   | `w = load WAIT_NR`; `IDLE` → push done                       |
 * | P4   | lazy only: `n = add(ADDED, 1) + 1`; `n < w` → push done      |
 * | P5   | `compareExchange(WAIT_NR, w, IDLE) != w` → push done (lost)  |
 * | P6   | notify `WAIT_NR` (wakes the waiter if it sleeps, else lost)  |
 *
 * With `epochTag`, W2 stores a value unique to the arming (threshold plus an
 * epoch), so a P5 from an older arming can never succeed on a newer one.
 *
 * ## Properties
 *
 * - `lost-wakeup` (a): all producers are done, the waiter sleeps in W4, and
 *   the unconsumed work meets the threshold: an unconsumed eager push, or at
 *   least `k` unconsumed pushes. For `k = 1` that is any unconsumed push. With
 *   `timeout` the waiter is then only rescued by its timeout.
 * - `double-notify` (b): two notifies for one arming. A notify belongs to the
 *   arming whose `WAIT_NR` its P5 swapped to `IDLE` (without P5: the arming
 *   its P3 observed).
 * - `early-lazy-notify` (c): a lazy push claims an arming although fewer than
 *   `k` lazy adds (P4) ran since the current wait cycle began. The count is a
 *   ghost counter reset by the first step of the cycle, not the `ADDED` word.
 * - `spurious-wake`: a push claims an arming while the unconsumed pushes do not
 *   meet the threshold (no unconsumed eager push and fewer than `k`). Stricter
 *   than (c); it measures wake-ups the waiter finds useless.
 * - `deadlock` (d): a terminal state other than "every push consumed" or
 *   "waiter sleeps on a lazy residue below the threshold" (the residue is
 *   waited out by the loop's timer, which the default configuration omits).
 *
 * Not modelled: the min-wait timer's re-arm with 1, shutdown, and the queue's
 * slot reuse. Nothing here touches the console; callers format results.
 *
 * @module
 */

/** Kind of one push: lazy pushes count towards the threshold, eager ones always wake. */
export type PushKind = "lazy" | "eager";

/** The protocol as specified, or one deliberately broken ordering of it. */
export type Variant =
  | "correct"
  | "recheck-before-arm"
  | "notify-without-claim"
  | "zero-after-arm"
  | "load-before-exchange";

/** A property the checker can find violated; see the module docs. */
export type Property =
  | "lost-wakeup"
  | "double-notify"
  | "early-lazy-notify"
  | "spurious-wake"
  | "deadlock";

/** One model instance: threshold, pushes per producer, protocol variant. */
export interface ModelConfig {
  /** Armed threshold `k`, an integer from 1 to 8. */
  readonly threshold: number;
  /** One list per producer: the kind of each of its pushes, in order. */
  readonly pushes: readonly (readonly PushKind[])[];
  /** Protocol variant; defaults to `"correct"`. */
  readonly variant?: Variant;
  /** Let the futex wait return at any moment, like a wait with a timeout. */
  readonly timeout?: boolean;
  /** Arm with a value unique to each arming, so a stale P5 fails. */
  readonly epochTag?: boolean;
}

/** A violated property and a schedule that reaches it. */
export interface Counterexample {
  readonly property: Property;
  readonly detail: string;
  /** Step labels from the initial state, the violating step last. */
  readonly trace: readonly string[];
}

/** Outcome of one exhaustive exploration. */
export interface ModelResult {
  /** Distinct states reached (after canonical relabelling of arming ids). */
  readonly states: number;
  /** Transitions taken, including ones into already visited states. */
  readonly transitions: number;
  /** States with no enabled step. */
  readonly terminals: number;
  /** First counterexample found per property, in discovery order. */
  readonly counterexamples: readonly Counterexample[];
}

type WaiterStep = "W1" | "W2" | "W3" | "W4" | "W5" | "W6" | "W7";
type ProducerStep = "P1" | "P2" | "P3" | "P4" | "P5" | "P6";

/** `WAIT_NR` value meaning "no waiter armed". */
const IDLE = -1;

const WAITER: readonly WaiterStep[] = [
  "W1",
  "W2",
  "W3",
  "W4",
  "W5",
  "W6",
  "W7",
];
const PRODUCER: readonly ProducerStep[] = ["P1", "P2", "P3", "P4", "P5", "P6"];

const WAITER_PROGRAM: Readonly<Record<Variant, readonly WaiterStep[]>> = {
  "correct": WAITER,
  "recheck-before-arm": ["W3", "W1", "W2", "W4", "W5", "W6", "W7"],
  "notify-without-claim": WAITER,
  "zero-after-arm": ["W2", "W1", "W3", "W4", "W5", "W6", "W7"],
  "load-before-exchange": WAITER,
};

const PRODUCER_PROGRAM: Readonly<Record<Variant, readonly ProducerStep[]>> = {
  "correct": PRODUCER,
  "recheck-before-arm": PRODUCER,
  "notify-without-claim": ["P1", "P2", "P3", "P4", "P6"],
  "zero-after-arm": PRODUCER,
  "load-before-exchange": ["P3", "P1", "P2", "P4", "P5", "P6"],
};

interface Producer {
  /** Index of the push in progress; equals the push count once finished. */
  push: number;
  /** Index into the producer program. */
  pc: number;
  /** Value loaded from `WAIT_NR` at P3. */
  w: number;
  /** Slot taken at P1, -1 before. */
  slot: number;
  /** The push decided not to notify. */
  gaveUp: boolean;
  /** Arming id this push will notify for, -1 when none. */
  claim: number;
  /** The claim has been checked against (c) and the spurious-wake rule. */
  committed: boolean;
}

interface State {
  tail: number;
  linked: number;
  eager: number;
  consumed: number;
  waitNr: number;
  added: number;
  wpc: number;
  blocked: boolean;
  finished: boolean;
  /** Id of the latest arming (0 before the first W2). */
  arm: number;
  /** Ghost: lazy adds since the current wait cycle began. */
  cycleAdds: number;
  /** Arming ids that already received a notify. */
  notified: number[];
  producers: Producer[];
}

type Issue = readonly [Property, string];

interface Transition {
  readonly label: string;
  readonly state: State;
  readonly issues: readonly Issue[];
}

interface Model {
  readonly k: number;
  readonly total: number;
  readonly kinds: readonly (readonly PushKind[])[];
  readonly waiter: readonly WaiterStep[];
  readonly producer: readonly ProducerStep[];
  readonly timeout: boolean;
  readonly epochTag: boolean;
}

function clone(s: State): State {
  return {
    ...s,
    notified: s.notified.slice(),
    producers: s.producers.map((p) => ({ ...p })),
  };
}

/** The value W2 stores and W4/W6 compare against. */
function armValue(m: Model, s: State): number {
  return m.epochTag ? s.arm : m.k;
}

/** The threshold carried by a non-idle `WAIT_NR` value. */
function thresholdOf(m: Model, w: number): number {
  return m.epochTag ? m.k : w;
}

/** Slots in `[consumed, tail)`: published and not yet popped. */
function pending(s: State): { count: number; eager: boolean } {
  const mask = ((1 << s.tail) - 1) & ~((1 << s.consumed) - 1);
  return { count: s.tail - s.consumed, eager: (s.eager & mask) !== 0 };
}

function meetsThreshold(m: Model, s: State): boolean {
  const p = pending(s);
  return p.eager || p.count >= m.k;
}

function waiterStep(m: Model, s: State): string {
  const op = m.waiter[s.wpc];
  const at = (step: WaiterStep) => m.waiter.indexOf(step);
  if (s.wpc === 0) s.cycleAdds = 0;
  s.wpc += 1;
  switch (op) {
    case "W1":
      s.added = 0;
      return "W1 store ADDED=0";
    case "W2":
      s.arm += 1; // ids only grow along one history, so this one is fresh
      s.waitNr = armValue(m, s);
      return `W2 arm WAIT_NR (arming a${s.arm})`;
    case "W3":
      if (s.tail > s.consumed) {
        s.wpc = at("W6");
        return `W3 load TAIL=${s.tail} > consumed=${s.consumed}: not empty`;
      }
      return `W3 load TAIL=${s.tail}: empty`;
    case "W4":
      if (s.waitNr !== armValue(m, s)) {
        s.wpc = at("W6");
        return "W4 futex wait: not-equal";
      }
      s.blocked = true;
      return `W4 futex wait: sleeps (arming a${s.arm})`;
    case "W5":
      return "W5 resumes";
    case "W6":
      if (s.waitNr === armValue(m, s)) {
        s.waitNr = IDLE;
        return "W6 disarm: won";
      }
      return "W6 disarm: already idle";
    case "W7": {
      while (s.consumed < s.tail && (s.linked & (1 << s.consumed)) !== 0) {
        s.consumed += 1;
      }
      if (s.consumed === m.total) {
        s.finished = true;
        return "W7 pop: all consumed";
      }
      s.wpc = 0;
      return `W7 pop up to ${s.consumed}/${m.total}, new cycle`;
    }
  }
}

function producerStep(m: Model, s: State, i: number, issues: Issue[]): string {
  const p = s.producers[i];
  const kind = m.kinds[i][p.push];
  const op = m.producer[p.pc];
  const who = `p${i}.${p.push} ${kind}`;
  let label: string;
  switch (op) {
    case "P1":
      p.slot = s.tail;
      s.tail += 1;
      if (kind === "eager") s.eager |= 1 << p.slot;
      label = `${who} P1 exchange TAIL: slot ${p.slot}`;
      break;
    case "P2":
      s.linked |= 1 << p.slot;
      label = `${who} P2 link slot ${p.slot}`;
      break;
    case "P3":
      p.w = s.waitNr;
      if (p.w === IDLE) p.gaveUp = true;
      else if (!m.producer.includes("P5")) p.claim = s.arm;
      label = `${who} P3 load WAIT_NR: ${p.w === IDLE ? "idle" : "armed"}`;
      break;
    case "P4": {
      s.added += 1;
      s.cycleAdds += 1;
      const n = s.added;
      if (n < thresholdOf(m, p.w)) p.gaveUp = true;
      label = `${who} P4 add ADDED: ${n}`;
      break;
    }
    case "P5":
      if (s.waitNr === p.w) {
        s.waitNr = IDLE;
        p.claim = s.arm;
        label = `${who} P5 claim: won arming a${s.arm}`;
      } else {
        p.gaveUp = true;
        label = `${who} P5 claim: lost`;
      }
      break;
    case "P6": {
      if (s.notified.includes(p.claim)) {
        issues.push([
          "double-notify",
          `second notify for arming a${p.claim}`,
        ]);
      } else s.notified.push(p.claim);
      const woke = s.blocked;
      s.blocked = false;
      label = `${who} P6 notify a${p.claim}: ${woke ? "wakes waiter" : "lost"}`;
      break;
    }
  }
  advance(m, s, i, issues);
  return label;
}

/** Moves producer `i` to its next applicable step, finishing the push at the end. */
function advance(m: Model, s: State, i: number, issues: Issue[]): void {
  const p = s.producers[i];
  const kind = m.kinds[i][p.push];
  const prog = m.producer;
  p.pc += 1;
  while (p.pc < prog.length) {
    const op = prog[p.pc];
    const skip = (op === "P4" && kind === "eager") ||
      (p.gaveUp && (op === "P4" || op === "P5" || op === "P6"));
    if (!skip) break;
    p.pc += 1;
  }
  if (p.pc < prog.length && prog[p.pc] === "P6" && !p.committed) {
    p.committed = true;
    if (kind === "lazy" && s.cycleAdds < m.k) {
      issues.push([
        "early-lazy-notify",
        `p${i}.${p.push} claims a${p.claim} after ${s.cycleAdds} lazy adds this cycle`,
      ]);
    }
    if (!meetsThreshold(m, s)) {
      const { count } = pending(s);
      issues.push([
        "spurious-wake",
        `p${i}.${p.push} claims a${p.claim} with ${count} lazy pushes pending`,
      ]);
    }
  }
  if (p.pc === prog.length) {
    s.producers[i] = {
      push: p.push + 1,
      pc: 0,
      w: IDLE,
      slot: -1,
      gaveUp: false,
      claim: -1,
      committed: false,
    };
  }
}

function successors(m: Model, s: State): Transition[] {
  const out: Transition[] = [];
  s.producers.forEach((p, i) => {
    if (p.push === m.kinds[i].length) return;
    const next = clone(s);
    const issues: Issue[] = [];
    out.push({ label: producerStep(m, next, i, issues), state: next, issues });
  });
  if (!s.finished && !s.blocked) {
    const next = clone(s);
    out.push({ label: waiterStep(m, next), state: next, issues: [] });
  }
  if (s.blocked && m.timeout) {
    const next = clone(s);
    next.blocked = false;
    out.push({ label: "W4 futex wait: times out", state: next, issues: [] });
  }
  return out;
}

/** Memo key; arming ids are relabelled by first appearance, so only equality counts. */
function keyOf(m: Model, s: State): string {
  const ids: number[] = [];
  const id = (a: number) => {
    if (a < 0) return a;
    const v = ids.indexOf(a);
    return v >= 0 ? v : ids.push(a) - 1;
  };
  let key = `${s.tail},${s.linked},${s.eager & ~((1 << s.consumed) - 1)},` +
    `${s.consumed},${s.added},${s.wpc},${+s.blocked}${+s.finished},` +
    `${id(s.arm)},${m.epochTag ? id(s.waitNr) : s.waitNr},${s.cycleAdds}`;
  for (const p of s.producers) {
    key += `/${p.push}.${p.pc}.${m.epochTag ? id(p.w) : p.w}.${p.slot}.` +
      `${+p.gaveUp}${+p.committed}.${id(p.claim)}`;
  }
  key += "/";
  for (let v = 0; v < ids.length; v++) {
    if (s.notified.includes(ids[v])) key += `${v}.`;
  }
  return key;
}

/** State-level checks: (a) lost wake-up and (d) unexpected terminal states. */
function stateIssues(m: Model, s: State, terminal: boolean): Issue[] {
  const producersDone = s.producers.every((p, i) =>
    p.push === m.kinds[i].length
  );
  const p = pending(s);
  if (producersDone && s.blocked && meetsThreshold(m, s)) {
    const what = p.eager ? "an eager push" : `${p.count} pushes`;
    return [["lost-wakeup", `waiter sleeps with ${what} unconsumed`]];
  }
  if (!terminal || s.finished) return [];
  if (producersDone && s.blocked) return []; // lazy residue below threshold
  return [["deadlock", `stuck at waiter step ${m.waiter[s.wpc]}`]];
}

function validate(config: ModelConfig): void {
  const { threshold, pushes } = config;
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > 8) {
    throw new RangeError(
      `Cannot check model: threshold must be an integer from 1 to 8, got ${threshold}`,
    );
  }
  const total = pushes.reduce((n, list) => n + list.length, 0);
  if (pushes.length < 1 || total < 1 || total > 16) {
    throw new RangeError(
      `Cannot check model: need 1 to 16 pushes in all, got ${total}`,
    );
  }
}

/**
 * Explores every interleaving of `config` and reports each violated property.
 *
 * @param config Threshold, pushes per producer, variant and options.
 * @returns State counts and the first counterexample per violated property.
 * @throws {RangeError} If the threshold or the push count is out of range.
 * @example
 * ```ts
 * import { checkWakeModel } from "./wake_model.ts";
 * const r = checkWakeModel({ threshold: 1, pushes: [["eager"], ["lazy"]] });
 * const lost = r.counterexamples.find((c) => c.property === "lost-wakeup");
 * if (lost !== undefined) throw new Error("protocol loses a wake-up");
 * ```
 */
export function checkWakeModel(config: ModelConfig): ModelResult {
  validate(config);
  const variant = config.variant ?? "correct";
  const m: Model = {
    k: config.threshold,
    total: config.pushes.reduce((n, list) => n + list.length, 0),
    kinds: config.pushes,
    waiter: WAITER_PROGRAM[variant],
    producer: PRODUCER_PROGRAM[variant],
    timeout: config.timeout ?? false,
    epochTag: config.epochTag ?? false,
  };
  const initial: State = {
    tail: 0,
    linked: 0,
    eager: 0,
    consumed: 0,
    waitNr: IDLE,
    added: 0,
    wpc: 0,
    blocked: false,
    finished: false,
    arm: 0,
    cycleAdds: 0,
    notified: [],
    producers: config.pushes.map(() => ({
      push: 0,
      pc: 0,
      w: IDLE,
      slot: -1,
      gaveUp: false,
      claim: -1,
      committed: false,
    })),
  };
  const found = new Map<Property, Counterexample>();
  const record = (issues: readonly Issue[], trace: () => string[]) => {
    for (const [property, detail] of issues) {
      if (!found.has(property)) {
        found.set(property, { property, detail, trace: trace() });
      }
    }
  };
  const visited = new Set<string>([keyOf(m, initial)]);
  const stack: { label: string; succ: Transition[]; next: number }[] = [];
  const path = () => stack.slice(1).map((f) => f.label);
  let transitions = 0;
  let terminals = 0;
  const enter = (label: string, s: State) => {
    const succ = successors(m, s);
    stack.push({ label, succ, next: 0 });
    if (succ.length === 0) terminals += 1;
    record(stateIssues(m, s, succ.length === 0), path);
  };
  enter("", initial);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next === top.succ.length) {
      stack.pop();
      continue;
    }
    const t = top.succ[top.next++];
    transitions += 1;
    record(t.issues, () => [...path(), t.label]);
    const key = keyOf(m, t.state);
    if (visited.has(key)) continue;
    visited.add(key);
    enter(t.label, t.state);
  }
  return {
    states: visited.size,
    transitions,
    terminals,
    counterexamples: [...found.values()],
  };
}

/**
 * Renders a counterexample as numbered trace lines, for test failure messages.
 *
 * @param c The counterexample to render.
 * @returns A multi-line description, property and detail first.
 * @example
 * ```ts
 * import { formatCounterexample } from "./wake_model.ts";
 * const text = formatCounterexample({
 *   property: "deadlock",
 *   detail: "stuck",
 *   trace: ["W1 store ADDED=0"],
 * });
 * if (!text.includes("1. W1")) throw new Error("unexpected format");
 * ```
 */
export function formatCounterexample(c: Counterexample): string {
  const lines = c.trace.map((label, i) => `  ${i + 1}. ${label}`);
  return [`${c.property}: ${c.detail}`, ...lines].join("\n");
}
