/**
 * Source URIs as the command line takes them, and the factory that turns a format and string options into
 * a StreamSource. Every option can be a URI query parameter (`file:DIR?format=csv&maxFilesPerTrigger=1`);
 * option names are case-insensitive, as in Spark, and an unknown option is an error listing the accepted ones.
 */

import type { SchemaSpec } from '../arrow/schema.js';
import { SluiceError } from '../errors.js';
import { KAFKA_CONSUMER_OPTION_KEYS, kafkaClientOptions, unknownKafkaSetting } from '../kafka/prefixed-options.js';
import { parseDuration } from '../util/duration.js';
import { parseMode } from './decode/common.js';
import { FILE_FORMATS, type FileFormat, FileSource } from './file-source.js';
import { KafkaSource } from './kafka/kafka-source.js';
import { NEXMARK_GENERATOR_OPTIONS, NexmarkSource, parseNexmarkKinds } from './nexmark-source.js';
import { RateSource } from './rate-source.js';
import { SocketSource } from './socket-source.js';
import type { StreamSource } from './source.js';

/** A parsed source URI: the source kind and its options as strings. */
export interface SourceUri {
  /** file, socket, rate or kafka. */
  format: string;
  options: Record<string, string>;
}

const URI_FORMS =
  'file:DIR, socket://HOST:PORT, rate:?rowsPerSecond=N, nexmark:?events=N, kafka://HOST:PORT/TOPIC[,TOPIC] or kafka://HOST:PORT?subscribePattern=REGEX';

function badUri(uri: string, why: string): SluiceError {
  return new SluiceError('BAD_SOURCE_URI', `cannot read source '${uri}': ${why}`, `write one of ${URI_FORMS}`);
}

/**
 * Parses `file:DIR?…`, `socket://HOST:PORT?…`, `rate:?…` and `kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]?…`.
 * The directory becomes option `path`; socket gives `host` and `port`; kafka gives `bootstrap` and `topic`
 * (no topic when the query names `subscribePattern` or `assign` instead: `kafka://HOST:PORT?assign=…`).
 */
export function parseSourceUri(uri: string): SourceUri {
  const m = /^([A-Za-z][\w+.-]*):(.*)$/s.exec(uri.trim());
  if (!m) throw badUri(uri, 'it does not start with a scheme');
  const scheme = m[1].toLowerCase();
  const q = m[2].indexOf('?');
  const body = q < 0 ? m[2] : m[2].slice(0, q);
  const options = queryOptions(uri, q < 0 ? '' : m[2].slice(q + 1));
  const setOnce = (key: string, value: string) => {
    if (key in options) throw badUri(uri, `option ${key} is given both in the URI and as a query parameter`);
    options[key] = value;
  };
  switch (scheme) {
    case 'file': {
      const dir = decodeURIComponent(body.startsWith('//') ? body.slice(2) : body);
      if (dir === '') throw badUri(uri, 'the directory is missing');
      setOnce('path', dir);
      return { format: 'file', options };
    }
    case 'socket': {
      const hp = /^\/\/([^/:?]+|\[[^\]]+\]):(\d+)\/?$/.exec(body);
      if (!hp) throw badUri(uri, 'expected socket://HOST:PORT, e.g. socket://localhost:9999');
      setOnce('host', hp[1].replace(/^\[|\]$/g, ''));
      setOnce('port', hp[2]);
      return { format: 'socket', options };
    }
    case 'rate': {
      if (body !== '' && body !== '//' && body !== '///')
        throw badUri(uri, `rate takes no path (found '${body}'); write rate:?rowsPerSecond=N`);
      return { format: 'rate', options };
    }
    case 'nexmark': {
      if (body !== '' && body !== '//' && body !== '///')
        throw badUri(uri, `nexmark takes no path (found '${body}'); write nexmark:?events=N`);
      return { format: 'nexmark', options };
    }
    case 'kafka': {
      const km = /^\/\/([^/]+)(?:\/([^/]*))?$/.exec(body);
      if (!km) throw badUri(uri, 'expected kafka://HOST:PORT/TOPIC (several brokers or topics separated by commas)');
      setOnce('bootstrap', decodeURIComponent(km[1]));
      if (km[2]) setOnce('topic', decodeURIComponent(km[2]));
      return { format: 'kafka', options };
    }
    default:
      throw badUri(uri, `unknown source type '${m[1]}'`);
  }
}

function queryOptions(uri: string, query: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(query)) {
    if (k in out) throw badUri(uri, `option ${k} is given twice`);
    out[k] = v;
  }
  return out;
}

/** Option values: strings from URIs and the CLI, or numbers and booleans from code. */
export type OptionValue = string | number | boolean | undefined;

/** The options each source accepts, by canonical (Spark) name. */
export const SOURCE_OPTIONS: Record<'file' | 'socket' | 'rate' | 'nexmark' | 'kafka', readonly string[]> = {
  file: [
    'path',
    'format',
    'schema',
    'maxFilesPerTrigger',
    'mode',
    'badRecordsPath',
    'columnNameOfCorruptRecord',
    'pathGlobFilter',
    'maxBytesPerTask',
    'header',
    'sep',
    'quote',
    'nullValue',
  ],
  socket: [
    'host',
    'port',
    'format',
    'schema',
    'mode',
    'badRecordsPath',
    'columnNameOfCorruptRecord',
    'segmentBytes',
    'flushIntervalMs',
    'maxReconnectDelayMs',
    'connectTimeoutMs',
    'waitForServer',
  ],
  rate: ['rowsPerSecond', 'rampUpTime', 'numPartitions'],
  kafka: [
    'bootstrap',
    'topic',
    'subscribePattern',
    'assign',
    'startingOffsets',
    'startingTimestamp',
    'startingOffsetsByTimestamp',
    'startingOffsetsByTimestampStrategy',
    'endingOffsets',
    'maxOffsetsPerTrigger',
    'minOffsetsPerTrigger',
    'maxTriggerDelay',
    'minPartitions',
    'failOnDataLoss',
    'valueFormat',
    'keyFormat',
    'schema',
    'mode',
    'badRecordsPath',
    'columnNameOfCorruptRecord',
    'includeHeaders',
    'groupId',
    'groupIdPrefix',
    ...KAFKA_CONSUMER_OPTION_KEYS,
  ],
  nexmark: [
    'events',
    'seed',
    'rate',
    'baseTime',
    'kinds',
    'maxEventsPerTrigger',
    'numPartitions',
    'eventsPerBatch',
    ...NEXMARK_GENERATOR_OPTIONS,
  ],
};

/** Spark's other names for the same option. */
const ALIASES: Record<string, string> = {
  delimiter: 'sep',
  subscribe: 'topic',
  'kafka.bootstrap.servers': 'bootstrap',
  'kafka.group.id': 'groupId',
};

/** The source formats {@link createSource} accepts; json, csv and text are the file source in that format. */
export const SOURCE_FORMATS = ['file', 'socket', 'rate', 'nexmark', 'kafka', 'json', 'csv', 'text'] as const;

/**
 * Creates a source from a format (file, socket, rate, or json/csv/text for the file source in that format)
 * and its options. Option values may be strings (from URIs) or numbers and booleans; `schema` is a DDL string
 * (`'id STRING, amount DOUBLE'`) or a JSON spec (`'{"id":"string"}'`).
 */
export function createSource(format: string, options: Record<string, OptionValue>): StreamSource {
  const kind = format.toLowerCase();
  if (kind === 'json' || kind === 'csv' || kind === 'text') {
    const given = options.format ?? options.FORMAT;
    if (given !== undefined && String(given).toLowerCase() !== kind) {
      throw new SluiceError(
        'BAD_OPTION',
        `format('${format}') conflicts with option format=${String(given)}`,
        'give the format once',
      );
    }
    return createSource('file', { ...options, format: kind });
  }
  switch (kind) {
    case 'file': {
      const o = new Options('file', options);
      return new FileSource({
        path: o.string('path') ?? '',
        format: o.oneOf('format', FILE_FORMATS) as FileFormat | undefined,
        schema: o.schema(),
        maxFilesPerTrigger: o.positiveInt('maxFilesPerTrigger'),
        mode: o.mode(),
        badRecordsPath: o.string('badRecordsPath'),
        columnNameOfCorruptRecord: o.string('columnNameOfCorruptRecord'),
        pathGlobFilter: o.string('pathGlobFilter'),
        maxBytesPerTask: o.positiveInt('maxBytesPerTask'),
        header: o.boolean('header'),
        sep: o.char('sep'),
        quote: o.char('quote'),
        nullValue: o.string('nullValue'),
      });
    }
    case 'socket': {
      const o = new Options('socket', options);
      return new SocketSource({
        host: o.string('host') ?? '',
        port: o.positiveInt('port') ?? 0,
        format: o.oneOf('format', ['text', 'json']) as 'text' | 'json' | undefined,
        schema: o.schema(),
        mode: o.mode(),
        badRecordsPath: o.string('badRecordsPath'),
        columnNameOfCorruptRecord: o.string('columnNameOfCorruptRecord'),
        segmentBytes: o.positiveInt('segmentBytes'),
        flushIntervalMs: o.positiveInt('flushIntervalMs'),
        maxReconnectDelayMs: o.positiveInt('maxReconnectDelayMs'),
        connectTimeoutMs: o.positiveInt('connectTimeoutMs'),
        waitForServerMs: o.secondsOrDuration('waitForServer'),
      });
    }
    case 'rate': {
      const o = new Options('rate', options);
      return new RateSource({
        rowsPerSecond: o.positiveNumber('rowsPerSecond'),
        rampUpTimeMs: o.secondsOrDuration('rampUpTime'),
        numPartitions: o.positiveInt('numPartitions'),
      });
    }
    case 'nexmark': {
      const o = new Options('nexmark', options);
      const seed = o.string('seed');
      const kinds = o.string('kinds');
      const baseTime = o.string('baseTime');
      return new NexmarkSource({
        events: o.nonNegativeInt('events'),
        seed: seed === undefined ? undefined : /^-?\d+$/.test(seed.trim()) ? Number(seed) : seed,
        rate: o.positiveNumber('rate'),
        baseTime: baseTime === undefined ? undefined : o.epochMillis('baseTime'),
        kinds: kinds === undefined ? undefined : parseNexmarkKinds(kinds),
        maxEventsPerTrigger: o.positiveInt('maxEventsPerTrigger'),
        numPartitions: o.positiveInt('numPartitions'),
        eventsPerBatch: o.positiveInt('eventsPerBatch'),
        generator: Object.fromEntries(NEXMARK_GENERATOR_OPTIONS.map((k) => [k, o.nonNegativeInt(k)])),
      });
    }
    case 'kafka': {
      const o = new Options('kafka', options);
      const topics = o
        .string('topic')
        ?.split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '');
      return new KafkaSource({
        bootstrap: o.string('bootstrap') ?? '',
        topics: topics && topics.length > 0 ? topics : undefined,
        subscribePattern: o.string('subscribePattern'),
        assign: o.string('assign'),
        startingOffsets: o.string('startingOffsets'),
        startingTimestamp: o.epochMillis('startingTimestamp'),
        startingOffsetsByTimestamp: o.string('startingOffsetsByTimestamp'),
        startingOffsetsByTimestampStrategy: o.oneOf('startingOffsetsByTimestampStrategy', ['error', 'latest']) as
          | 'error'
          | 'latest'
          | undefined,
        endingOffsets: o.string('endingOffsets'),
        maxOffsetsPerTrigger: o.positiveInt('maxOffsetsPerTrigger'),
        minOffsetsPerTrigger: o.positiveInt('minOffsetsPerTrigger'),
        maxTriggerDelayMs: o.duration('maxTriggerDelay'),
        minPartitions: o.positiveInt('minPartitions'),
        failOnDataLoss: o.boolean('failOnDataLoss'),
        valueFormat: o.oneOf('valueFormat', ['json', 'string', 'text', 'bytes']) as
          | 'json'
          | 'string'
          | 'text'
          | 'bytes'
          | undefined,
        keyFormat: o.oneOf('keyFormat', ['string', 'bytes']) as 'string' | 'bytes' | undefined,
        schema: o.schema(),
        mode: o.mode(),
        badRecordsPath: o.string('badRecordsPath'),
        columnNameOfCorruptRecord: o.string('columnNameOfCorruptRecord'),
        includeHeaders: o.boolean('includeHeaders'),
        groupId: o.string('groupId'),
        groupIdPrefix: o.string('groupIdPrefix'),
        client: kafkaClientOptions(
          'kafka source',
          Object.fromEntries(KAFKA_CONSUMER_OPTION_KEYS.map((k) => [k, o.string(k)])),
        ),
      });
    }
    default:
      throw new SluiceError(
        'BAD_SOURCE_FORMAT',
        `unknown source format '${format}'`,
        `use one of ${SOURCE_FORMATS.join(', ')}${kind === 'memory' ? ' (memory streams come from MemoryStream in sluice/testing)' : ''}`,
      );
  }
}

/** Reads and checks the string options of one source; unknown names are refused up front. */
class Options {
  private readonly values = new Map<string, string>();

  constructor(
    private readonly kind: keyof typeof SOURCE_OPTIONS,
    raw: Record<string, OptionValue>,
  ) {
    const accepted = SOURCE_OPTIONS[kind];
    const byLower = new Map(accepted.map((n) => [n.toLowerCase(), n]));
    for (const [key, value] of Object.entries(raw)) {
      if (value === undefined) continue;
      const lower = key.toLowerCase();
      const name = byLower.get(ALIASES[lower]?.toLowerCase() ?? lower);
      if (!name && lower.startsWith('kafka.')) throw unknownKafkaSetting(`${kind} source`, key, accepted);
      if (!name) {
        throw new SluiceError(
          'BAD_OPTION',
          `unknown option '${key}' for the ${kind} source`,
          `accepted options: ${accepted.join(', ')}`,
        );
      }
      if (this.values.has(name))
        throw new SluiceError('BAD_OPTION', `option ${name} of the ${kind} source is given twice`);
      this.values.set(name, String(value));
    }
  }

  string(name: string): string | undefined {
    return this.values.get(name);
  }

  private bad(name: string, what: string): SluiceError {
    return new SluiceError(
      'BAD_OPTION',
      `option ${name} of the ${this.kind} source must be ${what}, found '${this.values.get(name)}'`,
      `fix ${name} in the source URI (…?${name}=…) or in .option('${name}', …)`,
    );
  }

  positiveInt(name: string): number | undefined {
    const v = this.values.get(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n <= 0) throw this.bad(name, 'a positive integer');
    return n;
  }

  nonNegativeInt(name: string): number | undefined {
    const v = this.values.get(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n)) throw this.bad(name, 'a non-negative integer');
    return n;
  }

  /** Epoch milliseconds, or an ISO-8601 date-time. */
  epochMillis(name: string): number | undefined {
    const v = this.values.get(name);
    if (v === undefined) return undefined;
    const n = /^\s*-?\d+\s*$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isSafeInteger(n))
      throw this.bad(name, 'epoch milliseconds or an ISO-8601 time like 2024-01-01T00:00:00Z');
    return n;
  }

  positiveNumber(name: string): number | undefined {
    const v = this.values.get(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw this.bad(name, 'a positive number');
    return n;
  }

  boolean(name: string): boolean | undefined {
    const v = this.values.get(name);
    if (v === undefined) return undefined;
    const t = v.trim().toLowerCase();
    if (t !== 'true' && t !== 'false') throw this.bad(name, 'true or false');
    return t === 'true';
  }

  /** One character; `\t` and `tab` mean a tab. */
  char(name: string): string | undefined {
    const v = this.values.get(name);
    if (v === undefined) return undefined;
    const c = v === '\\t' || v.toLowerCase() === 'tab' ? '\t' : v;
    if (c.length !== 1) throw this.bad(name, 'one character');
    return c;
  }

  oneOf(name: string, allowed: readonly string[]): string | undefined {
    const v = this.values.get(name);
    if (v === undefined) return undefined;
    const t = v.toLowerCase();
    if (!allowed.includes(t)) throw this.bad(name, `one of ${allowed.join(', ')}`);
    return t;
  }

  mode() {
    const v = this.values.get('mode');
    return v === undefined ? undefined : parseMode(v, `option mode of the ${this.kind} source`);
  }

  /** A DDL string, or a JSON object spec. */
  schema(): SchemaSpec | undefined {
    const v = this.values.get('schema');
    if (v === undefined) return undefined;
    if (!v.trim().startsWith('{')) return v;
    try {
      return JSON.parse(v) as SchemaSpec;
    } catch (err) {
      throw new SluiceError(
        'BAD_SCHEMA',
        `option schema of the ${this.kind} source is not valid JSON (${(err as Error).message})`,
        'write a JSON object like {"id":"string"} or DDL like \'id STRING, amount DOUBLE\'',
      );
    }
  }

  /** Milliseconds of a duration such as `15m` or `30 seconds`; a bare number is milliseconds. */
  duration(name: string): number | undefined {
    const v = this.values.get(name);
    return v === undefined ? undefined : parseDuration(v, `option ${name} of the ${this.kind} source`);
  }

  /** Milliseconds of a duration; a bare number is seconds, as in Spark's rampUpTime. */
  secondsOrDuration(name: string): number | undefined {
    const v = this.values.get(name);
    if (v === undefined) return undefined;
    if (/^\s*\d+(\.\d+)?\s*$/.test(v)) return Number(v) * 1000;
    return parseDuration(v, `option ${name} of the ${this.kind} source`);
  }
}
