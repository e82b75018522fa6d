/**
 * The Kafka sink's fencing by producer epoch (`fencing=epoch`): each batch is one transaction of the
 * checkpoint's transactional id, and the process that takes the checkpoint over bumps the epoch, after which
 * the brokers refuse whatever the old owner still sends. The race no claim check closes is played exactly:
 * the old owner passes its claim check, pauses before its Produce request, and sends it after its successor
 * replayed the batch.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Table } from 'apache-arrow';
import { expect } from 'chai';
import { batchFromRows } from '../../lib/arrow/columns.js';
import { schemaFromSpec } from '../../lib/arrow/schema.js';
import { readVersioned, writeVersioned } from '../../lib/checkpoint/versioned-file.js';
import { SluiceError } from '../../lib/errors.js';
import { KafkaClient } from '../../lib/kafka/client.js';
import { KafkaSink, parseSluiceHeader, SLUICE_HEADER } from '../../lib/sinks/kafka-sink.js';
import { consumeWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';

const API_PRODUCE = 0;
const API_INIT_PRODUCER_ID = 22;
const REQUEST_TIMED_OUT = 7;
const ROWS = 40;

type Producer = { transactionalId: string; producerId: number; epoch: number };

/** The producer id and epoch the sink stored in checkpoint `dir`. */
function storedProducer(dir: string): Promise<Producer> {
  return readVersioned<Producer>(path.join(dir, 'kafka', 'producer'), () => null);
}

function rows(n: number): Table {
  const data = Array.from({ length: n }, (_, i) => ({ key: `k${i % 7}`, value: `v${i}` }));
  return new Table([batchFromRows(data, schemaFromSpec({ key: 'string', value: 'string' }))]);
}

/** Resolves when released: the pause of a process stopped between its claim check and its produce request. */
class Pause {
  reached!: () => void;
  readonly atPause = new Promise<void>((r) => {
    this.reached = r;
  });
  release!: () => void;
  readonly released = new Promise<void>((r) => {
    this.release = r;
  });
}

for (const recent of [false, true]) {
  describe(`kafka sink fencing by producer epoch (librdkafka ${recent ? '2.15.1' : '2.0.2'} test broker)`, function () {
    this.timeout(120_000);
    let broker: TestBroker;
    let client: KafkaClient;
    let root: string;
    let n = 0;
    const opened: KafkaSink[] = [];

    before(async () => {
      broker = await startBroker({ brokers: 2, recent });
      client = await KafkaClient.connect(broker.bootstrap);
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-kafka-fencing-'));
    });
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });
    after(async () => {
      await client?.close();
      await broker?.stop();
      fs.rmSync(root, { recursive: true, force: true });
    });

    async function topic(partitions = 3): Promise<string> {
      const t = `fenced${++n}`;
      await broker.command(`topic ${t} ${partitions}`);
      return t;
    }

    /** A sink on checkpoint `dir` as query `q1`, whose claim check runs `verifyOwner`. */
    async function sink(
      t: string,
      dir: string,
      options: Record<string, string> = {},
      verifyOwner: () => Promise<void> = async () => undefined,
    ): Promise<KafkaSink> {
      const s = new KafkaSink({ bootstrap: broker.bootstrap, topic: t, fencing: 'epoch', ...options });
      opened.push(s);
      await s.initialize({ queryId: 'q1', checkpointDir: dir, outputMode: 'append', verifyOwner });
      return s;
    }

    /** The seq of every record of batch `batchId` in `t`, read_uncommitted, sorted, duplicates kept. */
    async function seqs(t: string, batchId = 0): Promise<number[]> {
      const out: number[] = [];
      for (const p of await client.fetchOffsets(t)) {
        for (const m of await client.fetchRange(t, p.partition, p.low, p.high)) {
          const h = m.headers?.[SLUICE_HEADER];
          const origin = parseSluiceHeader((Array.isArray(h) ? h[0] : h) ?? '');
          if (origin?.batchId === batchId) out.push(origin.seq);
        }
      }
      return out.sort((a, b) => a - b);
    }

    const once = (k: number) => Array.from({ length: k }, (_, i) => i);

    /**
     * Plays the race: A writes the first half of batch 0, passes its claim check for the second half and
     * pauses; B opens the same checkpoint and writes batch 0; then A sends its second half. Returns A's error.
     */
    async function race(t: string, fencing: 'epoch' | 'claim'): Promise<unknown> {
      const dir = path.join(root, `ck${++n}`);
      const pause = new Pause();
      let checks = 0;
      const a = await sink(t, dir, { fencing }, async () => {
        if (++checks !== 2) return;
        pause.reached();
        await pause.released;
      });
      const aWrite = a.addBatch(0, rows(ROWS)).then(
        () => null,
        (err: unknown) => err,
      );
      await pause.atPause;
      const b = await sink(t, dir, { fencing });
      await b.addBatch(0, rows(ROWS));
      pause.release();
      return aWrite;
    }

    it('a paused owner that passed its claim check is refused by the broker once its successor started: each row once', async () => {
      const t = await topic();
      const err = await race(t, 'epoch');
      expect(err).to.be.instanceOf(SluiceError);
      expect((err as SluiceError).code).to.equal('KAFKA_FENCED');
      expect((err as SluiceError).message).to.match(/another process took over transactional id sluice-q1/);
      expect(await seqs(t)).to.deep.equal(once(ROWS));
      if (recent) {
        const committed = consumeWithKcat(broker.bootstrap, t, 'read_committed');
        expect(committed.map((r) => r.value).sort()).to.deep.equal(
          once(ROWS)
            .map((i) => `v${i}`)
            .sort(),
        );
      }
    });

    it('with fencing=claim the same race writes the paused owner’s half twice (what epoch fencing prevents)', async () => {
      const t = await topic();
      expect(await race(t, 'claim')).to.equal(null);
      const written = await seqs(t);
      expect(written).to.have.length(ROWS + ROWS / 2);
      expect(new Set(written).size).to.equal(ROWS);
    });

    it('a Produce that fails mid-batch is followed by a new epoch and the look-back: each row once, committed', async () => {
      const t = await topic();
      const dir = path.join(root, `ck${++n}`);
      let checks = 0;
      const s = await sink(t, dir, {}, async () => {
        // The second half's request times out (the broker refuses it, records unwritten).
        if (++checks === 2) await broker.command(`error ${API_PRODUCE} ${REQUEST_TIMED_OUT} 1`);
      });
      const before = await storedProducer(dir);
      await s.addBatch(0, rows(ROWS));
      await s.addBatch(1, rows(3));
      const after = await storedProducer(dir);
      expect(after.producerId).to.equal(before.producerId);
      expect(after.epoch, 'the epoch was bumped after the failed request').to.be.greaterThan(before.epoch);
      expect(await seqs(t)).to.deep.equal(once(ROWS));
      expect(await seqs(t, 1)).to.deep.equal(once(3));
      const committed = consumeWithKcat(broker.bootstrap, t, 'read_committed');
      expect(committed).to.have.length(ROWS + 3);
      if (recent) {
        // Each batch's commit marker takes one offset in every partition the batch wrote to.
        const ends = await client.fetchOffsets(t);
        const expected = ends.map((p) => {
          const mine = committed.filter((r) => r.partition === p.partition);
          const batches = new Set(mine.map((r) => parseSluiceHeader(r.headers.replace(/^sluice=/, ''))?.batchId));
          return mine.length + batches.size;
        });
        expect(ends.map((p) => p.high - p.low)).to.deep.equal(expected);
      }
    });

    it('a stored producer id the brokers no longer know (a restarted broker) is replaced by a new one', async () => {
      const t = await topic();
      const dir = path.join(root, `ck${++n}`);
      await (await sink(t, dir)).addBatch(0, rows(4));
      await writeVersioned(path.join(dir, 'kafka', 'producer'), { ...(await storedProducer(dir)), producerId: 4242 });
      const next = await sink(t, dir);
      await next.addBatch(1, rows(5));
      expect((await storedProducer(dir)).producerId).to.not.equal(4242);
      expect(await seqs(t, 1)).to.deep.equal(once(5));
    });

    it('brokers without InitProducerId v3 give one error naming fencing=claim and the broker setting', async () => {
      const t = await topic();
      await broker.command(`apiversion ${API_INIT_PRODUCER_ID} 0 2`);
      try {
        const err = await sink(t, path.join(root, `ck${++n}`)).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(SluiceError);
        expect((err as SluiceError).code).to.equal('KAFKA_NO_TRANSACTIONS');
        expect((err as SluiceError).message).to.match(/fencing=epoch.*InitProducerId v3/);
        expect((err as SluiceError).hint).to.match(/transaction\.state\.log\.replication\.factor.*fencing=claim/);
      } finally {
        await broker.command(`apiversion ${API_INIT_PRODUCER_ID} 0 4`);
      }
    });
  });
}
