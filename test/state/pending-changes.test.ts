import { expect } from 'chai';
import { indexHash } from '../../lib/state/arena-hash-map.js';
import { isDeadWeight, PendingChanges } from '../../lib/state/pending-changes.js';
import { encodeKey, encodeKeyString, FieldDictionary, ValueReader, ValueWriter } from '../../lib/state/value-codec.js';

/** Where the value at `off` ends, found by decoding it: the reference the entries' layout is checked against. */
function decodedValueEnd(changes: PendingChanges, off: number): number {
  const r = new ValueReader(changes.values.buf);
  r.setBuffer(changes.values.buf, off, changes.values.pos);
  r.skip();
  return r.pos;
}

/** The bytes of the records (key, value, entry type, timeout) that a commit writes for `changes`. */
function writtenRecordBytes(changes: PendingChanges, newKeysOnly: boolean): number {
  const w = new ValueWriter(256, new FieldDictionary());
  for (let p = 0; p < changes.length; p++) {
    const off = changes.offset[p];
    if (newKeysOnly && (off < 0 || changes.slot[p] >= 0)) continue;
    w.byte(0);
    changes.writeKey(w, p);
    if (off >= 0) w.raw(changes.values.buf, off, decodedValueEnd(changes, off));
    if (changes.timeout[p] >= 0) w.float64(changes.timeout[p]);
  }
  return w.pos;
}

describe('pending state changes', () => {
  it('reserve at least the record bytes a commit writes, all of them or the new keys only', () => {
    const changes = new PendingChanges(new FieldDictionary());
    for (let i = 0; i < 500; i++) {
      const composite = i % 2 === 0;
      const key = composite ? [`bidder-${i}`, i] : `k${i}`;
      const pk = composite ? encodeKeyString(key) : (key as string);
      const value = { price: i * 3.5, url: 'https://example.com/'.repeat(1 + (i % 7)), extra: 'x'.repeat(i % 50) };
      changes.put(-1, pk, composite, i % 3 === 0 ? i : -1, value, i % 5 === 0 ? 1000 + i : -1);
    }
    changes.remove(-1, 'gone', false, 7);
    for (const newKeysOnly of [false, true]) {
      const written = writtenRecordBytes(changes, newKeysOnly);
      expect(changes.recordBytes(newKeysOnly)).to.be.within(written, written * 1.25);
    }
    expect(changes.recordBytes(true)).to.be.below(changes.recordBytes(false) * 0.8);
  });

  it("finds a put's value end and timeout bytes from its entry, through rewrites in place and at other lengths", () => {
    const changes = new PendingChanges(new FieldDictionary());
    const check = () => {
      for (let p = 0; p < changes.length; p++) {
        const off = changes.offset[p];
        if (off < 0) continue;
        const end = changes.valueEndOf(p);
        expect(end, `change ${p}`).to.equal(decodedValueEnd(changes, off));
        const t = changes.timeout[p];
        if (t >= 0) expect(Buffer.from(changes.values.buf.buffer).readDoubleLE(end)).to.equal(t);
      }
    };
    const s = (n: number) => 'x'.repeat(n);
    // Odd keys with a timeout, even ones without.
    for (let i = 0; i < 50; i++) changes.put(-1, `k${i}`, false, -1, { n: i, s: s(8 + (i % 5)) }, i % 2 ? 100 + i : -1);
    check();
    for (let i = 0; i < 50; i++) {
      const p = changes.find(`k${i}`, false);
      // Rewritten in place at the same length, a timeout added for 8 bytes less of value or dropped for 8 more; at
      // another length; removed.
      if (i % 4 === 0) changes.put(p, `k${i}`, false, -1, { n: i, s: s(i % 5) }, 7 + i);
      else if (i % 4 === 1) changes.put(p, `k${i}`, false, -1, { n: i, s: s(16 + (i % 5)) }, -1);
      else if (i % 4 === 2) changes.remove(p, `k${i}`, false, -1);
      else changes.put(p, `k${i}`, false, -1, i, 3);
    }
    check();
    for (let i = 0; i < 50; i += 4) changes.put(changes.find(`k${i + 2}`, false), `k${i + 2}`, false, -1, [i], 9);
    check();
  });

  it("writes each change's canonical key encoding, a primitive key's copied from its entry rather than encoded again", () => {
    const changes = new PendingChanges(new FieldDictionary());
    const keys: unknown[] = ['k', 'ключ', '', 7, -0, 0.5, Number.NaN, 2 ** 40, ['c', 1]];
    for (const [i, key] of keys.entries()) {
      const composite = typeof key === 'object';
      const pk = composite ? encodeKeyString(key) : (key as string | number);
      // Puts, a remove of a committed key (an entry) and of one that is not (none), a put after a remove.
      if (i % 3 === 0) changes.put(-1, pk, composite, -1, { i }, i);
      else if (i % 3 === 1) changes.remove(-1, pk, composite, 0);
      else {
        changes.put(-1, pk, composite, -1, 'v', -1);
        changes.remove(changes.find(pk, composite), pk, composite, -1);
      }
      if (i === 3) changes.put(changes.find(pk, composite), pk, composite, -1, { i, more: 'x'.repeat(40) }, -1);
    }
    changes.remove(changes.find('k', false), 'k', false, 0);
    changes.put(changes.find('k', false), 'k', false, 0, 1, -1);
    const write = ValueWriter.prototype.write;
    let encoded = 0;
    ValueWriter.prototype.write = function (this: ValueWriter, value: unknown) {
      encoded++;
      write.call(this, value);
    };
    const w = new ValueWriter(16, null, true);
    const written: Uint8Array[] = [];
    try {
      for (let p = 0; p < changes.length; p++) {
        w.reset();
        changes.writeKey(w, p);
        written.push(w.bytes());
      }
    } finally {
      ValueWriter.prototype.write = write;
    }
    expect(written.map((b) => Buffer.from(b).toString('hex'))).to.deep.equal(
      keys.map((k) => Buffer.from(encodeKey(k)).toString('hex')),
    );
    // Only the removes of keys not committed have no entry to copy from.
    expect(encoded).to.equal(keys.filter((_, i) => i % 3 === 2 && typeof keys[i] !== 'object').length);
  });

  it('finds composite keys by their encoding, given as bytes or as a latin1 string, across table growth and clears', () => {
    const changes = new PendingChanges(new FieldDictionary());
    const bytesOf = (key: unknown) => {
      const bytes = encodeKey(key);
      return { bytes, length: bytes.length, hash: indexHash(bytes, 0, bytes.length) };
    };
    for (const n of [5000, 40, 3000]) {
      changes.clear();
      for (let i = 0; i < n; i++) {
        const key = [i % 97, i];
        expect(changes.find(bytesOf(key), true)).to.equal(-1);
        changes.put(-1, i % 2 === 0 ? bytesOf(key) : encodeKeyString(key), true, -1, { v: i }, -1);
        changes.put(-1, i, false, -1, i, -1);
      }
      for (let i = 0; i < n; i++) {
        const key = [i % 97, i];
        const p = changes.find(i % 3 === 0 ? bytesOf(key) : encodeKeyString(key), true);
        expect(changes.value(p)).to.deep.equal({ v: i });
        expect(changes.keyOf(p)).to.deep.equal(key);
        expect(changes.sortKey(p)).to.equal(encodeKeyString(key));
        expect(changes.pendingKey(p)).to.equal(encodeKeyString(key));
        expect(changes.keyOf(changes.find(i, false))).to.equal(i);
      }
      expect(changes.find(bytesOf([1, n + 1]), true)).to.equal(-1);
      expect(changes.length).to.equal(2 * n);
      expect(changes.sizeDelta).to.equal(2 * n);
    }
  });

  it("merges a later batch's changes over earlier ones into their net effect on the state both started from", () => {
    const dict = new FieldDictionary();
    // Keys 0-29 of each kind are in the state the changes start from; the batches put and remove among 0-59.
    const keyOf = (i: number): unknown => (i % 3 === 0 ? i : i % 3 === 1 ? `user-${i}` : [i, 'x']);
    const inBase = (i: number) => i < 30;
    const model = new Map<number, unknown>();
    const timeouts = new Map<number, number>();
    for (let i = 0; i < 30; i++) model.set(i, { base: i });
    const merged = new PendingChanges(dict);
    let seed = 17;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const lookup = (changes: PendingChanges, i: number) => {
      const key = keyOf(i);
      return Array.isArray(key)
        ? changes.find(encodeKeyString(key), true)
        : changes.find(key as string | number, false);
    };
    for (let batch = 0; batch < 6; batch++) {
      const later = new PendingChanges(dict);
      const before = new Map(model);
      for (let op = 0; op < 80; op++) {
        const i = Math.floor(rand() * 60);
        const key = keyOf(i);
        const pk = Array.isArray(key) ? encodeKeyString(key) : (key as string | number);
        const encoded = Array.isArray(key);
        // The later batch judges existence by the state with the earlier changes: its committed slot says so.
        const slot = before.has(i) ? 0 : -1;
        const p = lookup(later, i);
        if (rand() < 0.3) {
          later.remove(p, pk, encoded, slot);
          model.delete(i);
        } else {
          const value = { batch, op, pad: 'y'.repeat(Math.floor(rand() * 3)) };
          const timeout = rand() < 0.5 ? -1 : 1000 + op;
          later.put(p, pk, encoded, slot, value, timeout);
          model.set(i, value);
          timeouts.set(i, timeout);
        }
      }
      for (let p = 0; p < later.length; p++) {
        const key = later.keyOf(p);
        const i = typeof key === 'number' ? key : typeof key === 'string' ? Number(key.slice(5)) : (key as number[])[0];
        merged.merge(later, p, lookup(merged, i));
      }
      for (let i = 0; i < 60; i++) {
        const q = lookup(merged, i);
        const expected = model.has(i) ? model.get(i) : undefined;
        if (q < 0) {
          // No change: the key is as the base state has it.
          expect(inBase(i) ? { base: i } : undefined, `key ${i} after batch ${batch}`).to.deep.equal(expected);
          continue;
        }
        expect(merged.value(q), `key ${i} after batch ${batch}`).to.deep.equal(expected);
        expect(merged.slot[q] >= 0, `key ${i} in the base state`).to.equal(inBase(i));
        expect(merged.offset[q] >= 0 ? merged.timeout[q] : -1).to.equal(model.has(i) ? timeouts.get(i) : -1);
        if (merged.offset[q] >= 0) expect(decodedValueEnd(merged, merged.offset[q])).to.equal(merged.valueEndOf(q));
      }
      expect(merged.sizeDelta, `size after batch ${batch}`).to.equal(model.size - 30);
    }
  });

  it('finds int32 keys through their table and other primitive keys through the map, across growth and clears', () => {
    const changes = new PendingChanges(new FieldDictionary());
    const keysOf = (round: number): Array<string | number> => {
      const keys: Array<string | number> = [];
      for (let i = 0; i < 3000 * (round + 1); i++) keys.push(((i * 2654435761) | 0) >> (i % 7));
      keys.push(0, -0, 2 ** 31, -(2 ** 31), 0.5, Number.NaN, '7', 'k');
      return keys;
    };
    for (let round = 0; round < 3; round++) {
      // What each key's last change left, as a Map (which takes -0 as 0) has it: the value, or null for a remove.
      const model = new Map<string | number, number | null>();
      for (const [i, key] of keysOf(round).entries()) {
        const p = changes.find(key, false);
        expect(p >= 0, `key ${String(key)} found`).to.equal(model.has(key));
        if (i % 3 === 2) {
          changes.remove(p, key, false, 0);
          model.set(key, null);
        } else {
          changes.put(p, key, false, -1, i, -1);
          model.set(key, i);
        }
      }
      expect(changes.length).to.equal(model.size);
      for (const key of [...keysOf(round), 1e9, -5, 'absent']) {
        const p = changes.find(key, false);
        expect(p >= 0, `key ${String(key)}`).to.equal(model.has(key));
        if (p < 0) continue;
        const last = model.get(key);
        if (last === null) expect(changes.offset[p]).to.equal(-1);
        else expect(changes.value(p)).to.equal(last);
      }
      changes.clear();
      expect(changes.find(keysOf(round)[0], false)).to.equal(-1);
    }
  });

  it('keeps a big scratch buffer that commits keep filling and drops one they leave mostly empty', () => {
    expect(isDeadWeight(1 << 20, 0)).to.equal(false);
    expect(isDeadWeight(64 << 20, 40 << 20)).to.equal(false);
    expect(isDeadWeight(64 << 20, 8 << 20)).to.equal(true);
  });
});
