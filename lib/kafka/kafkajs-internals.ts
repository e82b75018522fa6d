/**
 * Every use of kafkajs beyond its public API: its private modules (`kafkajs/src/...`), the private `Cluster`
 * and `Broker` objects behind `Kafka`, and fields of those objects. package.json pins kafkajs to exactly 2.2.4
 * because none of this is covered by semver; upgrading means checking each piece below against the new
 * sources. A missing private symbol or field throws at once, naming the expected version, rather than
 * misbehaving later.
 *
 * Why each piece is used:
 * - `Cluster` (from the private `createCluster` of `Kafka`) and the private `sendRequest` of `Broker`: the
 *   checkpoint, not a consumer group, owns the offsets, and kafkajs has no public API to read a partition
 *   without joining a group (a join costs ~3 s and `consumer.seek` only works after `run()`), so the client
 *   sends requests to partition leaders itself, as kafkajs' consumer does underneath.
 * - The protocol `Encoder`, the Fetch response parser, the error codes and the record-set decoder: sluice
 *   encodes Fetch and Produce requests itself (see protocol/) but hands kafkajs' connection the request shape
 *   it expects, gets kafkajs' typed errors for failed partitions, and leaves record sets its own decoder does
 *   not handle (compressed, pre-0.11) to kafkajs.
 * - A Cluster's `brokerPool.findConnectedBroker`: sluice's own Metadata requests (which carry leader epochs)
 *   go to any broker the cluster is connected to, as kafkajs' own do.
 * - A Broker's `apiVersions`: sluice picks the Fetch and Produce versions it speaks from each broker's own
 *   answer (see protocol/api-versions.ts).
 * - A Broker's `joinGroup`, `syncGroup`, `heartbeat` and `leaveGroup`: a group member (see group-membership.ts)
 *   needs the group protocol without kafkajs' consumer, which would fetch the partitions itself and hand a
 *   rebalance's partitions over before the tasks reading them have stopped.
 * - A Broker's `connectionPool` and a Cluster's `findControllerBroker`, wrapped per instance to work around a
 *   kafkajs socket leak and the librdkafka mock's controller id (see {@link shareConnects} and
 *   {@link createCluster}).
 */
import { createRequire } from 'node:module';
import type { Kafka } from 'kafkajs';

const require = createRequire(import.meta.url);

const Encoder = require('kafkajs/src/protocol/encoder') as new (size?: number) => { writeBuffer(b: Buffer): unknown };
const Decoder = require('kafkajs/src/protocol/decoder') as new (buf: Buffer) => unknown;
const decodeMessages = require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages') as (
  decoder: unknown,
) => Promise<KjsRecord[]>;

const errorFromCode = require('kafkajs/src/protocol/error').createErrorFromCode as (code: number) => Error;

/** Kafka error codes newer than kafkajs 2.2.4, by the name Kafka gives them. */
const NEWER_ERRORS: Record<number, { type: string; message: string }> = {
  90: { type: 'PRODUCER_FENCED', message: 'There is a newer producer with the same transactional id' },
};

/**
 * kafkajs' typed error (KafkaJSProtocolError, retriable or not, or a subclass) for a Kafka error code; for a
 * code kafkajs does not know, with Kafka's name as its `type` where sluice knows it.
 */
export function kafkajsProtocolError(code: number): Error {
  const err = errorFromCode(code);
  const newer = NEWER_ERRORS[code];
  return newer ? Object.assign(err, { type: newer.type, code, message: newer.message }) : err;
}

/**
 * Throws kafkajs' typed error (KafkaJSOffsetOutOfRange, retriable protocol errors) for the first failed
 * partition of a Fetch response (any version: kafkajs checks only the partitions' error codes); gives the
 * response back otherwise.
 */
export const parseFetchResponse = require('kafkajs/src/protocol/requests/fetch/v4/response').parse as <T>(
  data: T,
) => Promise<T>;

/** A record as kafkajs decodes it. */
export interface KjsRecord {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | Buffer[]>;
  isControlRecord: boolean;
  batchContext: { firstOffset: string; lastOffsetDelta: number };
}

/** Decodes a record set (an int32 size, then record batches or a legacy message set) with kafkajs' decoder. */
export function kafkajsDecodeRecordSet(recordSet: Buffer): Promise<KjsRecord[]> {
  return decodeMessages(new Decoder(recordSet));
}

/** A request's header fields and body as kafkajs' connection sends it. */
interface KjsRequestHeader {
  apiKey: number;
  apiVersion: number;
  apiName: string;
  expectResponse: () => boolean;
  encode: () => Promise<unknown>;
}

/** A request as kafkajs' connection sends it: its header fields and body, and how its response is read. */
export interface KjsRequest<Decoded, Parsed> {
  request: KjsRequestHeader;
  response: { decode(raw: Buffer): Promise<Decoded>; parse(data: Decoded): Promise<Parsed> };
}

/**
 * The header fields of request `apiName` (`apiKey`, `apiVersion`) whose body is already encoded, with the body
 * wrapped in what kafkajs' connection expects `encode()` to return; every such request expects a response.
 */
export function encodedRequest(apiKey: number, apiName: string, apiVersion: number, body: Buffer): KjsRequestHeader {
  return {
    apiKey,
    apiVersion,
    apiName,
    expectResponse: () => true,
    encode: async () => {
      const e = new Encoder(body.length);
      e.writeBuffer(body);
      return e;
    },
  };
}

/** A JoinGroup answer as kafkajs decodes it. */
export interface KjsJoinGroupResponse {
  generationId: number;
  groupProtocol: string;
  leaderId: string;
  memberId: string;
  members: Array<{ memberId: string; memberMetadata: Buffer }>;
}

/** The part of kafkajs' private Broker (src/broker/index.js) the client uses. */
export interface KjsBroker {
  joinGroup(req: {
    groupId: string;
    sessionTimeout: number;
    rebalanceTimeout: number;
    memberId: string;
    protocolType: string;
    groupProtocols: Array<{ name: string; metadata: Buffer }>;
  }): Promise<KjsJoinGroupResponse>;
  syncGroup(req: {
    groupId: string;
    generationId: number;
    memberId: string;
    groupAssignment: Array<{ memberId: string; memberAssignment: Buffer }>;
  }): Promise<{ memberAssignment: Buffer }>;
  heartbeat(req: { groupId: string; groupGenerationId: number; memberId: string }): Promise<unknown>;
  leaveGroup(req: { groupId: string; memberId: string }): Promise<unknown>;
  offsetCommit(req: {
    groupId: string;
    groupGenerationId: number;
    memberId: string;
    topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>;
  }): Promise<unknown>;
  offsetFetch(req: {
    groupId: string;
    topics: Array<{ topic: string; partitions: Array<{ partition: number }> }>;
  }): Promise<{ responses: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }> }>;
  describeConfigs(req: {
    resources: Array<{ type: number; name: string; configNames: string[] }>;
    includeSynonyms: boolean;
  }): Promise<{
    resources: Array<{
      resourceName: string;
      configEntries: Array<{ configName: string; configValue: string | null }>;
    }>;
  }>;
}

/** Cluster metadata as kafkajs' private Cluster caches it. */
export interface KjsMetadata {
  controllerId: number;
  brokers: Array<{ nodeId: number }>;
  topicMetadata: Array<{ topic: string; topicErrorCode: number; partitionMetadata: Array<{ partitionId: number }> }>;
}

/** The part of kafkajs' private Cluster (src/cluster/index.js) the client uses. */
export interface KjsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  refreshMetadata(): Promise<void>;
  metadata(args?: { topics?: string[] }): Promise<KjsMetadata | null>;
  addMultipleTargetTopics(topics: string[]): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(args: { nodeId: string }): Promise<KjsBroker>;
  findTopicPartitionMetadata(topic: string): Array<{ partitionId: number; leader: number }>;
  findControllerBroker(): Promise<KjsBroker>;
  /** `coordinatorType` 0 (the default) finds a consumer group's coordinator, 1 a transactional id's. */
  findGroupCoordinator(args: { groupId: string; coordinatorType?: number }): Promise<KjsBroker>;
  fetchTopicsOffset(
    topics: Array<{
      topic: string;
      partitions: Array<{ partition: number }>;
      fromBeginning: boolean;
      fromTimestamp?: number;
    }>,
  ): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>>;
  brokerPool: { metadata: KjsMetadata | null; findConnectedBroker(): Promise<KjsBroker> };
}

/** Options of kafkajs' private createCluster. */
export interface KjsClusterOptions {
  allowAutoTopicCreation?: boolean;
  isolationLevel?: number;
  maxInFlightRequests?: number | null;
  /** How long the cluster's cached metadata counts as fresh, ms (kafkajs' default for a bare cluster: 0). */
  metadataMaxAge?: number;
}

type CreateCluster = (opts: KjsClusterOptions) => KjsCluster;

/**
 * A new Cluster of `kafka`, made by its private createCluster. `kafka`'s own clusters (those of the
 * producers it creates) are made the same way from then on, so all of them get the controller fallback of
 * {@link patchControllerLookup}.
 */
export function createCluster(kafka: Kafka, opts: KjsClusterOptions): KjsCluster {
  const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  if (!symbol) throw new Error('kafkajs internals changed: Kafka has no createCluster symbol (expected kafkajs 2.2.x)');
  const holder = kafka as unknown as Record<symbol, CreateCluster>;
  const original = holder[symbol];
  holder[symbol] = (o) => patchControllerLookup(original(o));
  return holder[symbol](opts);
}

/**
 * The librdkafka 2.0.2 mock broker reports ControllerId=0 while its brokers are numbered from 1, so
 * kafkajs cannot find the controller and every request it routes there fails with "Broker 0 not found
 * in the cached metadata" — notably InitProducerId for the idempotent producer. We wrap
 * `findControllerBroker` on each cluster this client creates (not kafkajs' prototype, so other kafkajs
 * users in the process are untouched) and fall back to the lowest-id broker ONLY when the reported
 * controller id is absent from the broker list, which a real cluster never reports (a stale but
 * existing controller id still takes kafkajs' normal refresh-and-retry path). CreateTopics and
 * DeleteTopics stay unsupported by the mock regardless.
 */
function patchControllerLookup(cluster: KjsCluster): KjsCluster {
  const original = cluster.findControllerBroker.bind(cluster);
  cluster.findControllerBroker = async () => {
    try {
      return await original();
    } catch (err) {
      const md = cluster.brokerPool.metadata;
      if (
        (err as Error).name !== 'KafkaJSBrokerNotFound' ||
        !md ||
        md.brokers.length === 0 ||
        md.brokers.some((b) => b.nodeId === md.controllerId)
      )
        throw err;
      const fallback = Math.min(...md.brokers.map((b) => b.nodeId));
      return cluster.findBroker({ nodeId: String(fallback) });
    }
  };
  return cluster;
}

const guarded = new WeakSet<object>();

/**
 * kafkajs' Connection.connect opens a new socket on every call until one is connected, so two requests
 * that find the connection closed at once (a read task and its prefetch) open two sockets and leak one,
 * which keeps the process from exiting. Makes each of a broker's connections share a pending connect.
 */
export function shareConnects(broker: KjsBroker): KjsBroker {
  if (guarded.has(broker)) return broker;
  guarded.add(broker);
  const pool = (broker as unknown as { connectionPool?: { pool?: Array<{ connect(): Promise<unknown> }> } })
    .connectionPool?.pool;
  if (!pool) throw new Error('kafkajs internals changed: Broker has no connectionPool.pool (expected kafkajs 2.2.x)');
  for (const connection of pool) {
    const connect = connection.connect.bind(connection);
    let pending: Promise<unknown> | null = null;
    connection.connect = () =>
      (pending ??= connect().finally(() => {
        pending = null;
      }));
  }
  return broker;
}

type SendRequest = <D, P>(request: KjsRequest<D, P>) => Promise<P>;

let sendRequestSymbol: symbol | undefined;

/** Sends `request` over `broker`'s connection pool (kafkajs' private Broker sendRequest); resolves to the parsed response. */
export function sendRequest<D, P>(broker: KjsBroker, request: KjsRequest<D, P>): Promise<P> {
  if (!sendRequestSymbol) {
    const found = Object.getOwnPropertySymbols(Object.getPrototypeOf(broker)).find(
      (s) => s.description === 'private:Broker:sendRequest',
    );
    if (!found) throw new Error('kafkajs internals changed: Broker has no sendRequest symbol (expected kafkajs 2.2.x)');
    sendRequestSymbol = found;
  }
  return (broker as unknown as Record<symbol, SendRequest>)[sendRequestSymbol](request);
}

/** A broker's ApiVersions answer: its version range per API key. */
export type ApiVersionRanges = Record<number, { minVersion: number; maxVersion: number } | undefined>;

/**
 * Asks `broker` for its ApiVersions (the private Broker's `apiVersions`). kafkajs asks only the first broker
 * it connects to and hands that answer to every other broker of the cluster, which is wrong for a cluster
 * mid-upgrade, so the client asks each broker itself.
 */
export function askApiVersions(broker: KjsBroker): Promise<ApiVersionRanges> {
  const ask = (broker as unknown as { apiVersions?: () => Promise<ApiVersionRanges> }).apiVersions;
  if (typeof ask !== 'function')
    throw new Error('kafkajs internals changed: Broker has no apiVersions (expected kafkajs 2.2.x)');
  return ask.call(broker);
}
