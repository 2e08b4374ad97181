/**
 * The queue contract, run against every queue implementation (JCTools'
 * style): the SharedArrayBuffer queue (`MpscQueue` + `Producer`) and the
 * array-backed oracle in `reference_queue.ts`. Every case is single-threaded
 * and seeded; the multi-worker cases live in `stress_test.ts`.
 *
 * A producer caught between its exchange and its link store is simulated on
 * the SAB queue by doing the exchange on `TAIL` by hand, with a node of a
 * slot claimed by hand, and storing the link later.
 *
 * Cases specific to the SAB queue (buffer validation, config validation)
 * follow the contract suite.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  BUSY,
  type DrainState,
  EMPTY,
  MpscQueue,
  Producer,
  PUSH_FULL,
  PUSH_OK,
  PUSH_WAS_EMPTY,
  type PushResult,
  type QueueConfig,
} from "../runtime/mpsc_queue.ts";
import {
  C_RELEASED_BYTES,
  C_RELEASED_NODES,
  FIRST_PRODUCER_NODE,
  H_BYTES,
  H_NODES,
  H_PRODUCERS,
  H_VERSION,
  type Layout,
  layoutFor,
  N_A,
  N_B,
  N_META,
  N_NEXT,
  NIL,
  nodeWord,
  P_ALLOC_BYTES,
  P_ALLOC_NODES,
  P_CLAIM,
  SLOT_CLAIMED,
  SLOT_FREE,
  slotWord,
  TAIL,
} from "../runtime/queue_layout.ts";
import { ReferenceQueue } from "./reference_queue.ts";
import { rng as prng } from "./rng.ts";

// ---------------------------------------------------------------------------
// What the contract suite needs from an implementation

/** A popped item, valid until the next pop. */
interface EntryView {
  readonly producer: number;
  readonly tag: number;
  readonly a: number;
  readonly b: number;
  readonly byteLength: number;
  /** Present on the SAB queue: where the payload sits in the buffer. */
  readonly byteOffset?: number;
  bytes(): Uint8Array;
}

interface Consumer {
  lastState: DrainState;
  tryPop(): EntryView | typeof EMPTY | typeof BUSY;
  drain(limit: number, fn: (entry: EntryView) => void | boolean): number;
  isEmpty(): boolean;
}

interface QueueProducer {
  readonly slot: number;
  readonly maxPayload: number;
  push(tag: number, a: number, b: number): PushResult;
  pushBatch(
    tags: ArrayLike<number>,
    as: ArrayLike<number>,
    bs: ArrayLike<number>,
    count: number,
  ): PushResult;
  pushBytes(tag: number, bytes: Uint8Array): PushResult;
  detach(): void;
}

interface Subject {
  readonly consumer: Consumer;
  attach(): QueueProducer;
  /**
   * Publishes an item from a free slot without storing its link (a producer
   * caught mid-push); the returned function stores the link.
   */
  midPush(tag: number, a: number, b: number): () => void;
  /** A new consumer handle continuing where `consumer` stopped. */
  resume(): Consumer;
  /**
   * Paints canaries around the payload rings; the last slot must stay
   * unattached. Returns a check that fails if any canary changed.
   */
  guard(): () => void;
  /** Byte range of a slot's payload ring, when the implementation has one. */
  ring?(slot: number): readonly [number, number];
}

type Factory = (config: Partial<QueueConfig>) => Subject;

// ---------------------------------------------------------------------------
// The SAB queue and the reference queue as subjects

/**
 * The first half of a push done by hand: claims a free slot, fills its next
 * node and exchanges it into `TAIL`. The returned function is the second
 * half (the link store); it also frees the slot with its allocation count
 * carried forward, as `Producer.detach` would.
 */
function handPush(
  buffer: SharedArrayBuffer,
  layout: Layout,
  tag: number,
  a: number,
  b: number,
): () => void {
  const w = new Int32Array(buffer);
  let slot = -1;
  for (let s = 0; s < layout.producers && slot < 0; s++) {
    const at = slotWord(s) + P_CLAIM;
    if (Atomics.compareExchange(w, at, SLOT_FREE, SLOT_CLAIMED) === SLOT_FREE) {
      slot = s;
    }
  }
  if (slot < 0) throw new Error("Test setup: no free slot for a hand push");
  const sw = slotWord(slot);
  const alloc = w[sw + P_ALLOC_NODES];
  const released = Atomics.load(w, sw + C_RELEASED_NODES);
  if (alloc - released >= layout.nodesPerProducer) {
    throw new Error("Test setup: hand-push slot is full");
  }
  const node = FIRST_PRODUCER_NODE + slot * layout.nodesPerProducer +
    (alloc & (layout.nodesPerProducer - 1));
  const at = nodeWord(layout, node);
  w[at + N_NEXT] = NIL;
  w[at + N_META] = tag * 2;
  w[at + N_A] = a;
  w[at + N_B] = b;
  w[sw + P_ALLOC_NODES] = alloc + 1;
  const prev = Atomics.exchange(w, TAIL, node);
  return () => {
    Atomics.store(w, nodeWord(layout, prev) + N_NEXT, node);
    Atomics.store(w, sw + P_CLAIM, SLOT_FREE);
  };
}

const CANARY = 0xc3;

/**
 * Canaries on both sides of the payload rings: before the first ring lie
 * the last slot's nodes and the node table's padding; after the last used
 * ring lies the last slot's ring, up to the end of the buffer.
 */
function guardRings(buffer: SharedArrayBuffer, layout: Layout): () => void {
  const u8 = new Uint8Array(buffer);
  const last = layout.producers - 1;
  const regions: [number, number][] = [
    [
      nodeWord(layout, FIRST_PRODUCER_NODE + last * layout.nodesPerProducer) *
      4,
      layout.bytesBase,
    ],
    [layout.bytesBase + last * layout.bytesPerProducer, layout.byteLength],
  ];
  for (const [from, to] of regions) u8.fill(CANARY, from, to);
  return () => {
    for (const [from, to] of regions) {
      for (let i = from; i < to; i++) {
        if (u8[i] !== CANARY) {
          assert.fail(`Canary at byte ${i} overwritten with ${u8[i]}`);
        }
      }
    }
  };
}

const sabQueue: Factory = (config) => {
  const q = MpscQueue.create(config);
  const layout = layoutFor(q.config);
  return {
    consumer: q,
    attach: () => Producer.attach(q.buffer),
    midPush: (tag, a, b) => handPush(q.buffer, layout, tag, a, b),
    resume: () => MpscQueue.resume(q.buffer),
    guard: () => guardRings(q.buffer, layout),
    ring: (slot) => {
      const start = layout.bytesBase + slot * layout.bytesPerProducer;
      return [start, start + layout.bytesPerProducer];
    },
  };
};

const referenceQueue: Factory = (config) => {
  const q = new ReferenceQueue(config);
  return {
    consumer: q,
    attach: () => q.attach(),
    midPush: (tag, a, b) => q.beginPush(tag, a, b),
    resume: () => q.resume(),
    guard: () => () => {},
  };
};

// ---------------------------------------------------------------------------
// Helpers

/** Runs `fn`, adding the seed to the message of anything it throws. */
function seeded(seed: number, fn: (random: () => number) => void): void {
  try {
    fn(prng(seed));
  } catch (e) {
    if (e instanceof Error) {
      e.message += ` [seed 0x${seed.toString(16)}]`;
    }
    throw e;
  }
}

/** Producer id and sequence number packed in a tag (both survive in 30 bits). */
function tagOf(id: number, seq: number): number {
  return (id << 20) | (seq & 0xfffff);
}

/** A plain item as a comparable string. */
function key(slot: number, tag: number, a: number, b: number): string {
  return `slot ${slot} tag ${tag} a ${a} b ${b}`;
}

function keyOf(e: EntryView): string {
  return key(e.producer, e.tag, e.a, e.b);
}

/** Drains everything (or up to `limit`) and returns the items as keys. */
function drainKeys(c: Consumer, limit = Infinity): string[] {
  const got: string[] = [];
  c.drain(limit, (e) => {
    got.push(keyOf(e));
  });
  return got;
}

/** Pops with `tryPop` until `EMPTY` or `BUSY`; returns keys and the stop. */
function popKeys(c: Consumer): { got: string[]; stop: symbol } {
  const got: string[] = [];
  for (;;) {
    const e = c.tryPop();
    if (e === EMPTY || e === BUSY) return { got, stop: e };
    got.push(keyOf(e));
  }
}

/** Payload content for item `seq` of producer `id`: framed by canaries. */
function payloadFor(id: number, seq: number, length: number): Uint8Array {
  const p = new Uint8Array(length);
  for (let i = 0; i < length; i++) p[i] = (id * 31 + seq * 7 + i * 3) & 0xff;
  if (length > 0) p[0] = 0xa5;
  if (length > 1) p[length - 1] = 0x5a;
  return p;
}

/** What the consumer must see next: a plain item or a payload item. */
interface Expected {
  slot: number;
  tag: number;
  /** Plain items: the value words. Payload items: undefined. */
  a?: number;
  b?: number;
  payload?: Uint8Array;
}

/** Checks one popped entry against the expected item. */
function checkEntry(
  subject: Subject,
  e: EntryView,
  want: Expected | undefined,
  where: string,
): void {
  if (want === undefined) assert.fail(`${where}: unexpected item ${keyOf(e)}`);
  assert.equal(e.producer, want.slot, `${where}: producer slot`);
  assert.equal(e.tag, want.tag, `${where}: tag`);
  if (want.payload === undefined) {
    assert.equal(e.byteLength, -1, `${where}: plain item has no payload`);
    assert.equal(e.a, want.a, `${where}: a`);
    assert.equal(e.b, want.b, `${where}: b`);
    return;
  }
  assert.equal(e.byteLength, want.payload.length, `${where}: payload length`);
  assert.deepEqual(e.bytes(), want.payload, `${where}: payload bytes`);
  if (subject.ring !== undefined && e.byteOffset !== undefined) {
    const [start, end] = subject.ring(e.producer);
    assert.ok(
      e.byteOffset >= start && e.byteOffset + e.byteLength <= end,
      `${where}: payload [${e.byteOffset}, +${e.byteLength}) outside ring [${start}, ${end})`,
    );
  }
}

// ---------------------------------------------------------------------------
// The contract suite

function contractSuite(name: string, make: Factory): void {
  Deno.test(`${name}: items of interleaved producers come out in push order`, () => {
    seeded(0x5eed0001, (random) => {
      const s = make({
        producers: 4,
        nodesPerProducer: 16,
        bytesPerProducer: 0,
      });
      const ps = [0, 1, 2, 3].map(() => s.attach());
      const next = [0, 0, 0, 0];
      const expected: string[] = [];
      const got: string[] = [];
      for (let step = 0; step < 4000; step++) {
        if (random() < 0.6) {
          const id = Math.floor(random() * 4);
          const p = ps[id];
          const t = tagOf(id, next[id]);
          if (p.push(t, id, next[id]) !== PUSH_FULL) {
            expected.push(key(p.slot, t, id, next[id]));
            next[id]++;
          }
        } else {
          got.push(...drainKeys(s.consumer, 1 + Math.floor(random() * 6)));
        }
      }
      got.push(...drainKeys(s.consumer));
      assert.equal(s.consumer.lastState, "empty");
      assert.deepEqual(got, expected);
      assert.ok(expected.length > 1000, "enough items went through");
    });
  });

  Deno.test(`${name}: a push caught between exchange and link reads busy, never empty`, () => {
    const s = make({ producers: 2, nodesPerProducer: 8, bytesPerProducer: 0 });
    const c = s.consumer;
    const p = s.attach();

    // On an empty queue.
    let link = s.midPush(1, 100, 0);
    assert.equal(c.tryPop(), BUSY);
    assert.equal(c.tryPop(), BUSY);
    assert.equal(c.isEmpty(), false);
    assert.equal(c.drain(10, () => assert.fail("nothing is linked")), 0);
    assert.equal(c.lastState, "busy");
    link();
    let r = popKeys(c);
    assert.equal(r.got.length, 1);
    assert.match(r.got[0], / tag 1 a 100 b 0$/);
    assert.equal(r.stop, EMPTY);

    // Behind queued items, with another item pushed after it: whatever
    // comes out before the link is a prefix of the push order that stops
    // before the unlinked item; then busy, repeatedly.
    const before = [key(p.slot, 2, 0, 1), key(p.slot, 2, 0, 2)];
    p.push(2, 0, 1);
    p.push(2, 0, 2);
    link = s.midPush(3, 0, 3);
    const handKeyTail = " tag 3 a 0 b 3";
    p.push(2, 0, 4);
    r = popKeys(c);
    assert.equal(r.stop, BUSY);
    assert.deepEqual(r.got, before.slice(0, r.got.length));
    for (let i = 0; i < 3; i++) assert.equal(c.tryPop(), BUSY);
    assert.equal(c.drain(10, () => {}), 0);
    assert.equal(c.lastState, "busy");
    link();
    const rest = drainKeys(c);
    assert.equal(c.lastState, "empty");
    const all = [...r.got, ...rest];
    assert.equal(all.length, 4);
    assert.deepEqual(all.slice(0, 2), before);
    assert.ok(all[2].endsWith(handKeyTail), all[2]);
    assert.equal(all[3], key(p.slot, 2, 0, 4));

    // After the consumer took all but the last item.
    p.push(4, 0, 5);
    p.push(4, 0, 6);
    r = { got: [], stop: EMPTY };
    const first = c.tryPop();
    assert.ok(first !== EMPTY && first !== BUSY);
    assert.equal(keyOf(first), key(p.slot, 4, 0, 5));
    link = s.midPush(5, 0, 7);
    r = popKeys(c);
    assert.equal(r.stop, BUSY);
    assert.deepEqual(r.got, [key(p.slot, 4, 0, 6)].slice(0, r.got.length));
    link();
    const tail = [...r.got, ...drainKeys(c)];
    assert.equal(tail.length, 2);
    assert.ok(tail[1].endsWith(" tag 5 a 0 b 7"), tail[1]);
    assert.equal(c.tryPop(), EMPTY);

    // The hand-pushed slot is consistent: a producer attached to it works.
    const q = s.attach();
    for (let i = 0; i < 8; i++) assert.notEqual(q.push(6, 1, i), PUSH_FULL);
    assert.equal(q.push(6, 1, 8), PUSH_FULL);
    assert.equal(drainKeys(c).length, 8);
    assert.notEqual(q.push(6, 1, 9), PUSH_FULL);
  });

  Deno.test(`${name}: a capped drain leaves the rest queued in order and reports more`, () => {
    const s = make({ producers: 2, nodesPerProducer: 8, bytesPerProducer: 0 });
    const [p, q] = [s.attach(), s.attach()];
    const expected: string[] = [];
    for (let i = 0; i < 10; i++) {
      const by = i % 3 === 0 ? q : p;
      by.push(9, by.slot, i);
      expected.push(key(by.slot, 9, by.slot, i));
    }
    const got = drainKeys(s.consumer, 3);
    assert.deepEqual(got, expected.slice(0, 3));
    assert.equal(s.consumer.lastState, "more");
    got.push(...drainKeys(s.consumer, 4));
    assert.deepEqual(got, expected.slice(0, 7));
    assert.equal(s.consumer.lastState, "more");
    got.push(...drainKeys(s.consumer, 100));
    assert.deepEqual(got, expected);
    assert.equal(s.consumer.lastState, "empty");
  });

  Deno.test(`${name}: drain and tryPop report empty on an empty queue`, () => {
    const s = make({ producers: 1, nodesPerProducer: 4, bytesPerProducer: 0 });
    const c = s.consumer;
    assert.equal(c.drain(5, () => assert.fail("queue is empty")), 0);
    assert.equal(c.lastState, "empty");
    assert.equal(c.tryPop(), EMPTY);
    assert.equal(c.isEmpty(), true);
    const p = s.attach();
    p.push(1, 2, 3);
    assert.equal(c.isEmpty(), false);
    assert.equal(c.drain(5, () => {}), 1);
    assert.equal(c.lastState, "empty");
    assert.equal(c.isEmpty(), true);
    assert.equal(c.drain(5, () => {}), 0);
    assert.equal(c.lastState, "empty");
  });

  Deno.test(`${name}: a full slot refuses pushes cleanly and accepts again after a drain`, () => {
    const s = make({ producers: 2, nodesPerProducer: 4, bytesPerProducer: 64 });
    const c = s.consumer;
    const [p, q] = [s.attach(), s.attach()];
    const results = [0, 1, 2, 3].map((i) => p.push(1, 0, i));
    assert.deepEqual(results, [PUSH_WAS_EMPTY, PUSH_OK, PUSH_OK, PUSH_OK]);
    assert.equal(p.push(1, 0, 4), PUSH_FULL);
    assert.equal(p.pushBatch([1], [0], [5], 1), PUSH_FULL);
    assert.equal(p.pushBytes(1, new Uint8Array(8)), PUSH_FULL);
    assert.equal(q.push(2, 1, 0), PUSH_OK, "other slots are not affected");
    assert.deepEqual(drainKeys(c), [
      key(p.slot, 1, 0, 0),
      key(p.slot, 1, 0, 1),
      key(p.slot, 1, 0, 2),
      key(p.slot, 1, 0, 3),
      key(q.slot, 2, 1, 0),
    ]);
    for (let i = 0; i < 4; i++) {
      assert.notEqual(p.push(1, 0, 10 + i), PUSH_FULL);
    }
    assert.equal(p.push(1, 0, 14), PUSH_FULL);

    // tryPop releases an item's storage on the following call.
    assert.notEqual(c.tryPop(), EMPTY);
    assert.equal(p.push(1, 0, 14), PUSH_FULL, "popped item is still held");
    assert.notEqual(c.tryPop(), EMPTY);
    assert.notEqual(p.push(1, 0, 14), PUSH_FULL, "released on the next call");
    drainKeys(c);

    // The payload ring fills independently of the nodes.
    assert.notEqual(p.pushBytes(3, payloadFor(0, 0, 32)), PUSH_FULL);
    assert.notEqual(p.pushBytes(3, payloadFor(0, 1, 32)), PUSH_FULL);
    assert.equal(p.pushBytes(3, payloadFor(0, 2, 8)), PUSH_FULL);
    assert.notEqual(p.push(4, 0, 3), PUSH_FULL, "a node is still free");
    const lengths: number[] = [];
    c.drain(10, (e) => {
      lengths.push(e.byteLength);
    });
    assert.deepEqual(lengths, [32, 32, -1]);
    assert.notEqual(p.pushBytes(3, payloadFor(0, 2, 8)), PUSH_FULL);
  });

  for (const nodesPerProducer of [1, 2]) {
    Deno.test(
      `${name}: wraparound with ${nodesPerProducer} node(s) and 64 bytes per producer keeps ids, sequences and payloads`,
      () => {
        seeded(0x5eed0100 + nodesPerProducer, (random) => {
          wraparound(make, nodesPerProducer, random);
        });
      },
    );
  }

  Deno.test(`${name}: payloads crossing the ring end skip to its start, canaries intact`, () => {
    const s = make({ producers: 2, nodesPerProducer: 4, bytesPerProducer: 64 });
    const check = s.guard();
    const p = s.attach();
    const sizes = [5, 24, 17, 32, 3, 31, 8, 29, 1, 0, 13, 32, 32, 25];
    const queued: Expected[] = [];
    let seq = 0;
    let skips = 0;
    let lastEnd = -1;
    for (let round = 0; round < 600; round++) {
      const length = sizes[seq % sizes.length];
      const payload = payloadFor(0, seq, length);
      if (p.pushBytes(tagOf(0, seq), payload) !== PUSH_FULL) {
        queued.push({ slot: p.slot, tag: tagOf(0, seq), payload });
        seq++;
      }
      if (round % 3 === 2) {
        s.consumer.drain(1 + (round % 4), (e) => {
          checkEntry(s, e, queued.shift(), `round ${round}`);
          if (e.byteOffset !== undefined && s.ring !== undefined) {
            if (e.byteOffset < lastEnd && e.byteLength > 0) skips++;
            if (e.byteLength > 0) lastEnd = e.byteOffset + e.byteLength;
          }
        });
      }
      check();
    }
    s.consumer.drain(Infinity, (e) => checkEntry(s, e, queued.shift(), "end"));
    assert.equal(queued.length, 0);
    assert.ok(seq > 150, `only ${seq} payloads went through`);
    if (s.ring !== undefined) assert.ok(skips > 20, `only ${skips} wraps seen`);
    check();
  });

  Deno.test(`${name}: a payload too long for the space before the ring end fits once the ring is drained`, () => {
    for (const [first, second] of [[8, 64], [40, 48], [24, 48]]) {
      const s = make({
        producers: 1,
        nodesPerProducer: 4,
        bytesPerProducer: 64,
      });
      const p = s.attach();
      assert.notEqual(p.pushBytes(1, payloadFor(0, 0, first)), PUSH_FULL);
      assert.equal(s.consumer.drain(10, () => {}), 1);
      assert.equal(s.consumer.lastState, "empty");
      // Nothing is queued: the whole ring is free for any payload up to
      // maxPayload. Refusing it here would refuse it forever.
      const payload = payloadFor(0, 1, second);
      assert.notEqual(
        p.pushBytes(2, payload),
        PUSH_FULL,
        `${second}-byte payload after a drained ${first}-byte one`,
      );
      const got: Uint8Array[] = [];
      s.consumer.drain(10, (e) => {
        got.push(e.bytes().slice());
      });
      assert.deepEqual(got, [payload]);
    }
  });

  Deno.test(`${name}: pushBatch is all or nothing and stays contiguous`, () => {
    let s = make({ producers: 2, nodesPerProducer: 4, bytesPerProducer: 0 });
    let [p, q] = [s.attach(), s.attach()];
    p.push(1, 0, 0);
    p.push(1, 0, 1);
    assert.equal(p.pushBatch([2, 2, 2], [0, 0, 0], [2, 3, 4], 3), PUSH_FULL);
    assert.deepEqual(drainKeys(s.consumer), [
      key(p.slot, 1, 0, 0),
      key(p.slot, 1, 0, 1),
    ]);
    const five = [0, 1, 2, 3, 4];
    assert.equal(p.pushBatch(five, five, five, 5), PUSH_FULL, "over capacity");
    assert.equal(p.pushBatch([], [], [], 0), PUSH_OK);
    assert.equal(s.consumer.isEmpty(), true, "an empty batch queues nothing");

    s = make({ producers: 2, nodesPerProducer: 4, bytesPerProducer: 0 });
    [p, q] = [s.attach(), s.attach()];
    assert.equal(q.push(3, 1, 0), PUSH_WAS_EMPTY);
    assert.equal(p.pushBatch([2, 2, 2], [0, 0, 0], [2, 3, 4], 3), PUSH_OK);
    assert.equal(q.push(3, 1, 1), PUSH_OK);
    assert.equal(p.pushBatch([2, 2], [0, 0], [5, 6], 2), PUSH_FULL);
    assert.deepEqual(drainKeys(s.consumer), [
      key(q.slot, 3, 1, 0),
      key(p.slot, 2, 0, 2),
      key(p.slot, 2, 0, 3),
      key(p.slot, 2, 0, 4),
      key(q.slot, 3, 1, 1),
    ]);
  });

  Deno.test(`${name}: pushBatch sees the nodes the consumer released since the producer last looked`, () => {
    const s = make({ producers: 1, nodesPerProducer: 4, bytesPerProducer: 0 });
    const p = s.attach();
    const three = [7, 8, 9];
    assert.equal(p.pushBatch(three, three, three, 3), PUSH_WAS_EMPTY);
    for (let round = 0; round < 3; round++) {
      assert.equal(drainKeys(s.consumer).length, 3);
      // All four nodes are free again; the producer's own bookkeeping last
      // saw one free node.
      assert.equal(
        p.pushBatch(three, three, three, 3),
        PUSH_WAS_EMPTY,
        `batch of 3 into an empty 4-node slot, round ${round}`,
      );
    }
  });

  Deno.test(`${name}: PUSH_WAS_EMPTY is reported exactly when the queue held nothing`, () => {
    seeded(0x5eed0200, (random) => {
      const s = make({
        producers: 3,
        nodesPerProducer: 4,
        bytesPerProducer: 64,
      });
      const ps = [s.attach(), s.attach(), s.attach()];
      let queued = 0;
      let wasEmpty = 0;
      for (let step = 0; step < 6000; step++) {
        const r = random();
        const p = ps[Math.floor(random() * 3)];
        let count = 1;
        let result: PushResult;
        if (r < 0.3) {
          result = p.push(1, 0, step);
        } else if (r < 0.4) {
          count = 1 + Math.floor(random() * 3);
          result = p.pushBatch([1, 1, 1], [0, 0, 0], [step, step, step], count);
        } else if (r < 0.5) {
          result = p.pushBytes(
            1,
            payloadFor(0, step, Math.floor(random() * 20)),
          );
        } else if (r < 0.75) {
          const e = s.consumer.tryPop();
          if (e !== EMPTY && e !== BUSY) queued--;
          continue;
        } else {
          queued -= s.consumer.drain(Math.floor(random() * 4), () => {});
          continue;
        }
        if (result === PUSH_FULL) continue;
        assert.equal(
          result,
          queued === 0 ? PUSH_WAS_EMPTY : PUSH_OK,
          `step ${step}: ${queued} items queued before the push`,
        );
        if (queued === 0) wasEmpty++;
        queued += count;
      }
      assert.ok(wasEmpty > 100, `only ${wasEmpty} pushes onto an empty queue`);
    });
  });

  Deno.test(`${name}: a throwing drain callback consumes only the item it threw on`, () => {
    const s = make({ producers: 1, nodesPerProducer: 4, bytesPerProducer: 0 });
    const c = s.consumer;
    const p = s.attach();
    for (let i = 0; i < 4; i++) p.push(1, 0, i);
    const seen: number[] = [];
    assert.throws(
      () =>
        c.drain(10, (e) => {
          seen.push(e.b);
          if (e.b === 1) throw new Error("callback failed");
        }),
      /callback failed/,
    );
    assert.deepEqual(seen, [0, 1]);
    assert.notEqual(p.push(1, 0, 4), PUSH_FULL);
    assert.notEqual(p.push(1, 0, 5), PUSH_FULL);
    assert.equal(
      p.push(1, 0, 6),
      PUSH_FULL,
      "exactly the two taken items were released",
    );
    assert.deepEqual(drainKeys(c).map((k) => k.slice(-3)), [
      "b 2",
      "b 3",
      "b 4",
      "b 5",
    ]);
    assert.equal(c.lastState, "empty");
  });

  Deno.test(`${name}: a drain callback returning false stops after that item`, () => {
    const s = make({ producers: 1, nodesPerProducer: 8, bytesPerProducer: 0 });
    const p = s.attach();
    for (let i = 0; i < 5; i++) p.push(1, 0, i);
    const seen: number[] = [];
    const n = s.consumer.drain(10, (e) => {
      seen.push(e.b);
      return e.b !== 1;
    });
    assert.equal(n, 2);
    assert.deepEqual(seen, [0, 1]);
    assert.equal(s.consumer.lastState, "more");
    assert.deepEqual(drainKeys(s.consumer).map((k) => k.slice(-3)), [
      "b 2",
      "b 3",
      "b 4",
    ]);
  });

  Deno.test(`${name}: attaching more producers than slots throws RangeError`, () => {
    const s = make({ producers: 3, nodesPerProducer: 2, bytesPerProducer: 0 });
    const ps = [s.attach(), s.attach(), s.attach()];
    assert.deepEqual(ps.map((p) => p.slot).sort(), [0, 1, 2]);
    assert.throws(() => s.attach(), {
      name: "RangeError",
      message: /^Cannot attach producer: /,
    });
    ps[1].detach();
    assert.equal(s.attach().slot, ps[1].slot);
    assert.throws(() => s.attach(), RangeError);
  });

  Deno.test(`${name}: detach then re-attach continues the slot without corruption`, () => {
    seeded(0x5eed0300, (random) => {
      const s = make({
        producers: 3,
        nodesPerProducer: 2,
        bytesPerProducer: 64,
      });
      const check = s.guard();
      let p = s.attach();
      const slot = p.slot;
      const other = s.attach();
      const queued: Expected[] = [];
      const seqs = [0, 0];
      const pushOne = (by: QueueProducer, id: number): PushResult => {
        const seq = seqs[id];
        const tag = tagOf(id, seq);
        let r: PushResult;
        let want: Expected;
        if (random() < 0.5) {
          r = by.push(tag, id, seq);
          want = { slot: by.slot, tag, a: id, b: seq };
        } else {
          const payload = payloadFor(id, seq, Math.floor(random() * 25));
          r = by.pushBytes(tag, payload);
          want = { slot: by.slot, tag, payload };
        }
        if (r !== PUSH_FULL) {
          queued.push(want);
          seqs[id]++;
        }
        return r;
      };
      const drain = (limit: number, where: string) =>
        s.consumer.drain(limit, (e) => checkEntry(s, e, queued.shift(), where));
      for (let round = 0; round < 500; round++) {
        const pushes = 1 + Math.floor(random() * 3);
        for (let i = 0; i < pushes; i++) pushOne(p, 0);
        pushOne(other, 1);
        drain(Math.floor(random() * 3), `round ${round}`);
        p.detach();
        assert.equal(
          p.push(1, 0, -1),
          PUSH_FULL,
          "a detached producer refuses",
        );
        p = s.attach();
        assert.equal(p.slot, slot);
        check();
      }
      drain(Infinity, "end");
      assert.equal(queued.length, 0);
      assert.ok(
        seqs[0] > 200,
        `only ${seqs[0]} items from the re-attached slot`,
      );
      check();
    });
  });

  Deno.test(`${name}: resume continues from the cursor the previous consumer left`, () => {
    const s = make({ producers: 1, nodesPerProducer: 8, bytesPerProducer: 0 });
    const p = s.attach();
    for (let i = 0; i < 6; i++) p.push(1, 0, i);
    assert.deepEqual(drainKeys(s.consumer, 2).map((k) => k.slice(-3)), [
      "b 0",
      "b 1",
    ]);
    const c = s.resume();
    assert.deepEqual(drainKeys(c).map((k) => k.slice(-3)), [
      "b 2",
      "b 3",
      "b 4",
      "b 5",
    ]);
    assert.equal(c.lastState, "empty");
    for (let i = 0; i < 8; i++) assert.notEqual(p.push(1, 0, 6 + i), PUSH_FULL);
    assert.equal(p.push(1, 0, 14), PUSH_FULL);
    assert.equal(drainKeys(c).length, 8);
    assert.equal(c.tryPop(), EMPTY);
  });

  Deno.test(`${name}: resume after tryPop neither repeats the popped item nor leaks its node`, () => {
    const s = make({ producers: 1, nodesPerProducer: 4, bytesPerProducer: 0 });
    const p = s.attach();
    for (let i = 0; i < 3; i++) p.push(1, 0, i);
    const e = s.consumer.tryPop();
    assert.ok(e !== EMPTY && e !== BUSY);
    assert.equal(e.b, 0);
    const c = s.resume();
    assert.deepEqual(drainKeys(c).map((k) => k.slice(-3)), ["b 1", "b 2"]);
    for (let i = 0; i < 4; i++) {
      assert.notEqual(
        p.push(1, 0, 3 + i),
        PUSH_FULL,
        `push ${i} after the hand-over`,
      );
    }
  });
}

/** Random pushes of every kind and random pops over tiny slots. */
function wraparound(
  make: Factory,
  nodesPerProducer: number,
  random: () => number,
): void {
  const s = make({ producers: 4, nodesPerProducer, bytesPerProducer: 64 });
  const check = s.guard();
  const ps = [s.attach(), s.attach(), s.attach()];
  const seqs = [0, 0, 0];
  const queued: Expected[] = [];
  let popped = 0;
  const take = (e: EntryView, where: string) => {
    checkEntry(s, e, queued.shift(), where);
    popped++;
  };
  for (let step = 0; step < 8000; step++) {
    const where = `step ${step}`;
    const id = Math.floor(random() * 3);
    const p = ps[id];
    const seq = seqs[id];
    const r = random();
    if (r < 0.3) {
      if (p.push(tagOf(id, seq), id, seq) !== PUSH_FULL) {
        queued.push({ slot: p.slot, tag: tagOf(id, seq), a: id, b: seq });
        seqs[id]++;
      }
    } else if (r < 0.5) {
      const payload = payloadFor(id, seq, Math.floor(random() * 33));
      if (p.pushBytes(tagOf(id, seq), payload) !== PUSH_FULL) {
        queued.push({ slot: p.slot, tag: tagOf(id, seq), payload });
        seqs[id]++;
      }
    } else if (r < 0.6) {
      const count = 1 + Math.floor(random() * (nodesPerProducer + 1));
      const tags = [], as = [], bs = [];
      for (let i = 0; i < count; i++) {
        tags.push(tagOf(id, seq + i));
        as.push(id);
        bs.push(seq + i);
      }
      if (p.pushBatch(tags, as, bs, count) !== PUSH_FULL) {
        for (let i = 0; i < count; i++) {
          queued.push({ slot: p.slot, tag: tags[i], a: id, b: seq + i });
        }
        seqs[id] += count;
      } else {
        assert.ok(count > 0);
      }
    } else if (r < 0.8) {
      const e = s.consumer.tryPop();
      if (e === BUSY) assert.fail(`${where}: busy without a producer mid-push`);
      if (e === EMPTY) assert.equal(queued.length, 0, `${where}: empty`);
      else take(e, where);
    } else {
      s.consumer.drain(1 + Math.floor(random() * 3), (e) => take(e, where));
      if (s.consumer.lastState === "empty") assert.equal(queued.length, 0);
    }
    check();
  }
  s.consumer.drain(Infinity, (e) => take(e, "end"));
  assert.equal(queued.length, 0);
  assert.ok(popped > 2000, `only ${popped} items went through`);
  for (const seq of seqs) assert.ok(seq > 300, `a producer pushed only ${seq}`);
}

contractSuite("SAB queue", sabQueue);
// A buffer this thread knows only as a SharedArrayBuffer (a copy of a fresh
// queue's): consumer and producers use JS Atomics, not WebAssembly.
contractSuite("SAB queue, JS Atomics", (config) => {
  const fresh = MpscQueue.create(config);
  const copy = new SharedArrayBuffer(fresh.buffer.byteLength);
  new Uint8Array(copy).set(new Uint8Array(fresh.buffer));
  const q = MpscQueue.resume(copy);
  assert.equal(q.memory, undefined);
  const layout = layoutFor(q.config);
  return {
    consumer: q,
    attach: () => Producer.attach(copy),
    midPush: (tag, a, b) => handPush(copy, layout, tag, a, b),
    resume: () => MpscQueue.resume(copy),
    guard: () => guardRings(copy, layout),
    ring: (slot) => {
      const start = layout.bytesBase + slot * layout.bytesPerProducer;
      return [start, start + layout.bytesPerProducer];
    },
  };
});
// Every producer on the consumer's thread: links stored with plain writes.
contractSuite("SAB queue, attachLocal producers", (config) => {
  const s = sabQueue(config);
  const q = s.consumer as MpscQueue;
  return { ...s, attach: () => q.attachLocal() };
});
contractSuite("reference queue", referenceQueue);

// ---------------------------------------------------------------------------
// SAB queue only: buffer and config validation

function notQueueBuffers(): [string, unknown][] {
  const good = MpscQueue.create({ producers: 2, nodesPerProducer: 4 }).buffer;
  const copy = (edit: (w: Int32Array) => void) => {
    const b = new SharedArrayBuffer(good.byteLength);
    new Uint8Array(b).set(new Uint8Array(good));
    edit(new Int32Array(b));
    return b;
  };
  return [
    ["an ArrayBuffer", new ArrayBuffer(good.byteLength)],
    ["a typed array over the buffer", new Int32Array(good)],
    ["a plain object", { byteLength: good.byteLength }],
    ["null", null],
    ["a number", 42],
    ["a tiny SharedArrayBuffer", new SharedArrayBuffer(16)],
    ["a zeroed SharedArrayBuffer", new SharedArrayBuffer(good.byteLength)],
    ["a queue buffer of another layout version", copy((w) => w[H_VERSION]++)],
    ["a truncated queue buffer", good.slice(0, good.byteLength - 128)],
  ];
}

Deno.test("Producer.attach rejects what is not a queue buffer with TypeError", () => {
  for (const [what, buffer] of notQueueBuffers()) {
    assert.throws(
      () => Producer.attach(buffer as SharedArrayBuffer),
      { name: "TypeError", message: /^Cannot attach producer: / },
      what,
    );
  }
});

Deno.test("MpscQueue.resume rejects what is not a queue buffer with TypeError", () => {
  for (const [what, buffer] of notQueueBuffers()) {
    assert.throws(
      () => MpscQueue.resume(buffer as SharedArrayBuffer),
      { name: "TypeError", message: /^Cannot resume queue: / },
      what,
    );
  }
});

Deno.test("Producer.attach rejects a buffer whose header holds invalid sizes with TypeError", () => {
  const good = MpscQueue.create({ producers: 2, nodesPerProducer: 4 }).buffer;
  for (const [word, value] of [[H_NODES, 3], [H_PRODUCERS, 0], [H_BYTES, 48]]) {
    const b = new SharedArrayBuffer(good.byteLength);
    new Uint8Array(b).set(new Uint8Array(good));
    new Int32Array(b)[word] = value;
    assert.throws(
      () => Producer.attach(b),
      { name: "TypeError", message: /^Cannot attach producer: / },
      `header word ${word} = ${value}`,
    );
  }
});

Deno.test("queue config is validated with TypeError or RangeError, Cannot create queue: ...", () => {
  const cases: [Record<string, unknown>, "TypeError" | "RangeError", RegExp][] =
    [
      [
        { producers: 1.5 },
        "TypeError",
        /producers must be an integer, got 1.5$/,
      ],
      [{ producers: "4" }, "TypeError", /producers must be an integer, got 4$/],
      [
        { producers: NaN },
        "TypeError",
        /producers must be an integer, got NaN$/,
      ],
      [
        { nodesPerProducer: 2.5 },
        "TypeError",
        /nodesPerProducer must be an integer/,
      ],
      [
        { bytesPerProducer: 64n },
        "TypeError",
        /bytesPerProducer must be an integer/,
      ],
      [
        { producers: 0 },
        "RangeError",
        /producers must be from 1 to 4096, got 0$/,
      ],
      [
        { producers: 4097 },
        "RangeError",
        /producers must be from 1 to 4096, got 4097$/,
      ],
      [
        { nodesPerProducer: 0 },
        "RangeError",
        /nodesPerProducer must be a power of two from 1 to 1048576, got 0$/,
      ],
      [
        { nodesPerProducer: 3 },
        "RangeError",
        /nodesPerProducer must be a power of two .* got 3$/,
      ],
      [
        { nodesPerProducer: 2 ** 21 },
        "RangeError",
        /nodesPerProducer must be a power of two/,
      ],
      [
        { bytesPerProducer: 32 },
        "RangeError",
        /bytesPerProducer must be 0 or at least 64, got 32$/,
      ],
      [
        { bytesPerProducer: 100 },
        "RangeError",
        /bytesPerProducer must be a power of two .* got 100$/,
      ],
      [
        { bytesPerProducer: -64 },
        "RangeError",
        /bytesPerProducer must be a power of two/,
      ],
      [
        { bytesPerProducer: 2 ** 27 },
        "RangeError",
        /bytesPerProducer must be a power of two/,
      ],
      [
        { producers: 4096, bytesPerProducer: 2 ** 26 },
        "RangeError",
        /exceeds the 2 GiB limit$/,
      ],
    ];
  for (const [config, name, message] of cases) {
    assert.throws(
      () => MpscQueue.create(config as Partial<QueueConfig>),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.equal(e.name, name, JSON.stringify(config, (_, v) => String(v)));
        assert.match(e.message, /^Cannot create queue: /);
        assert.match(e.message, message);
        return true;
      },
    );
  }
  for (
    const config of [
      { producers: 1, nodesPerProducer: 1, bytesPerProducer: 0 },
      { producers: 4096, nodesPerProducer: 1, bytesPerProducer: 64 },
      { producers: 1, nodesPerProducer: 2 ** 20, bytesPerProducer: 0 },
      { producers: 1, nodesPerProducer: 1, bytesPerProducer: 2 ** 26 },
    ]
  ) {
    assert.deepEqual({ ...MpscQueue.create(config).config }, config);
  }
});

Deno.test("SAB queue: payload space keeps coming back when the byte counters pass 2^31 and wrap", () => {
  // Counters as after ~2 GiB of payloads: just below 2^31, where the int32
  // counters turn negative, and just below 2^32, where they wrap to 0.
  for (const start of [2 ** 31 - 64, -64]) {
    const fresh = MpscQueue.create({
      producers: 1,
      nodesPerProducer: 4,
      bytesPerProducer: 64,
    });
    const w = new Int32Array(fresh.buffer);
    const at = slotWord(0);
    w[at + P_ALLOC_BYTES] = start;
    w[at + C_RELEASED_BYTES] = start;
    const q = MpscQueue.resume(fresh.buffer);
    const p = Producer.attach(q.buffer);
    const got: number[] = [];
    const want: number[] = [];
    for (let i = 0; i < 40; i += 2) {
      // Two items a round: the first released behind its link, the second
      // taken off the tail.
      for (const seq of [i, i + 1]) {
        const bytes = payloadFor(0, seq, 24);
        assert.notEqual(
          p.pushBytes(1, bytes),
          PUSH_FULL,
          `from ${start}: #${seq}`,
        );
        want.push(...bytes);
      }
      q.drain(10, (e) => {
        got.push(...e.bytes());
      });
    }
    assert.deepEqual(got, want);
    const moved = (w[at + P_ALLOC_BYTES] - start) | 0;
    assert.ok(moved >= 40 * 24, `from ${start}: counters moved ${moved}`);
    assert.equal(w[at + C_RELEASED_BYTES], w[at + P_ALLOC_BYTES]);
  }
});
