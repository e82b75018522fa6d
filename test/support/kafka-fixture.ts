/**
 * Test support: the before/after block Kafka tests share, a test broker, a client connected to it and a
 * temporary directory, with fresh topic and path names.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KafkaClient } from '../../lib/kafka/client.js';
import type { KafkaClientOptions } from '../../lib/kafka/client-options.js';
import { type StartBrokerOptions, startBroker, type TestBroker } from './kafka-broker.js';

/** A running broker, a client of it and a temporary directory, valid inside the tests of the block. */
export interface KafkaFixture {
  broker: TestBroker;
  client: KafkaClient;
  /** The temporary directory, removed after the block (or each test). */
  root: string;
  /** Creates a topic of `partitions` partitions named `prefix` and a number not used before; returns the name. */
  topic(partitions: number, prefix?: string): Promise<string>;
  /** A path under root named `prefix` and a number not used before (nothing is created). */
  path(prefix: string): string;
}

/** Options of {@link useKafkaFixture}. */
export interface KafkaFixtureOptions {
  /** Names the temporary directory, `sluice-kafka-<name>-XXXXXX`. */
  name: string;
  broker?: StartBrokerOptions;
  client?: KafkaClientOptions;
  /** A new broker, client and directory for each test instead of one for the block. */
  each?: boolean;
}

/**
 * Registers mocha hooks in the calling describe block that start a broker, connect a client and make a
 * temporary directory before its tests (or each test), and close, stop and remove them after.
 */
export function useKafkaFixture(options: KafkaFixtureOptions): KafkaFixture {
  let n = 0;
  const fixture = {
    async topic(partitions: number, prefix = 't'): Promise<string> {
      const name = `${prefix}${++n}`;
      await fixture.broker.command(`topic ${name} ${partitions}`);
      return name;
    },
    path: (prefix: string): string => path.join(fixture.root, `${prefix}${++n}`),
  } as KafkaFixture;
  (options.each ? beforeEach : before)(async () => {
    fixture.broker = await startBroker(options.broker ?? { brokers: 1 });
    fixture.client = await KafkaClient.connect(fixture.broker.bootstrap, options.client);
    fixture.root = fs.mkdtempSync(path.join(os.tmpdir(), `sluice-kafka-${options.name}-`));
  });
  (options.each ? afterEach : after)(async () => {
    await fixture.client?.close();
    await fixture.broker?.stop();
    if (fixture.root) fs.rmSync(fixture.root, { recursive: true, force: true });
  });
  return fixture;
}
