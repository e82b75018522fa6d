import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { schemaToSpec } from '../../lib/arrow/schema.js';
import { SluiceError } from '../../lib/errors.js';
import { FileSource } from '../../lib/sources/file-source.js';
import { KafkaSource } from '../../lib/sources/kafka/kafka-source.js';
import { RateSource } from '../../lib/sources/rate-source.js';
import { SocketSource } from '../../lib/sources/socket-source.js';
import { createSource, parseSourceUri } from '../../lib/sources/source-uri.js';
import { useTmpDir } from '../checkpoint/helpers.js';

function errorOf(fn: () => unknown): SluiceError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(SluiceError);
    return err as SluiceError;
  }
  return expect.fail('expected a SluiceError');
}

describe('source URIs', () => {
  const tmp = useTmpDir();

  it('parses file, socket, rate and kafka URIs with query options', () => {
    expect(parseSourceUri('file:data/in?format=csv&maxFilesPerTrigger=1')).to.deep.equal({
      format: 'file',
      options: { path: 'data/in', format: 'csv', maxFilesPerTrigger: '1' },
    });
    expect(parseSourceUri('file:///abs/dir%20x')).to.deep.equal({ format: 'file', options: { path: '/abs/dir x' } });
    expect(parseSourceUri('socket://localhost:9999')).to.deep.equal({
      format: 'socket',
      options: { host: 'localhost', port: '9999' },
    });
    expect(parseSourceUri('rate:?rowsPerSecond=10&numPartitions=2')).to.deep.equal({
      format: 'rate',
      options: { rowsPerSecond: '10', numPartitions: '2' },
    });
    expect(parseSourceUri('rate:')).to.deep.equal({ format: 'rate', options: {} });
    expect(
      parseSourceUri('kafka://b1:9092,b2:9092/clicks,views?startingOffsets=earliest&maxOffsetsPerTrigger=500'),
    ).to.deep.equal({
      format: 'kafka',
      options: {
        bootstrap: 'b1:9092,b2:9092',
        topic: 'clicks,views',
        startingOffsets: 'earliest',
        maxOffsetsPerTrigger: '500',
      },
    });
    expect(parseSourceUri('file:in?schema=id%20STRING,%20amount%20DOUBLE').options.schema).to.equal(
      'id STRING, amount DOUBLE',
    );
  });

  it('explains malformed URIs and lists the accepted forms', () => {
    const cases: [string, RegExp][] = [
      ['data/in', /does not start with a scheme/],
      ['ftp://x/y', /unknown source type 'ftp'/],
      ['socket://localhost', /expected socket:\/\/HOST:PORT/],
      ['kafka:///t', /expected kafka:\/\/HOST:PORT\/TOPIC/],
      ['file:', /the directory is missing/],
      ['rate:fast', /rate takes no path/],
      ['file:in?mode=a&mode=b', /option mode is given twice/],
      ['socket://h:1?port=2', /option port is given both in the URI and as a query parameter/],
    ];
    for (const [uri, message] of cases) {
      const err = errorOf(() => parseSourceUri(uri));
      expect(err.message, uri).to.match(message);
      expect(err.hint, uri).to.contain(
        'file:DIR, socket://HOST:PORT, rate:?rowsPerSecond=N, nexmark:?events=N, kafka://HOST:PORT/TOPIC[,TOPIC] or kafka://HOST:PORT?subscribePattern=REGEX',
      );
    }
  });

  it('creates sources from string options, case-insensitively, with typed values', async () => {
    fs.mkdirSync(path.join(tmp(), 'in'));
    const file = createSource('file', {
      path: path.join(tmp(), 'in'),
      FORMAT: 'csv',
      schema: '{"id":"long","name":"string"}',
      maxfilespertrigger: '3',
      mode: 'dropmalformed',
      header: 'true',
      delimiter: '\\t',
    });
    expect(file).to.be.instanceOf(FileSource);
    expect((file as FileSource).options).to.include({
      format: 'csv',
      maxFilesPerTrigger: 3,
      mode: 'DROPMALFORMED',
      header: true,
      sep: '\t',
    });
    expect(schemaToSpec(file.schema())).to.deep.equal({ id: 'long', name: 'string' });
    expect(createSource('json', { path: path.join(tmp(), 'in'), schema: 'a STRING' })).to.be.instanceOf(FileSource);
    expect(createSource('socket', { host: 'localhost', port: '9999' })).to.be.instanceOf(SocketSource);
    const rate = createSource('rate', { rowsPerSecond: 10, rampUpTime: '5', numPartitions: 2 });
    expect(rate).to.be.instanceOf(RateSource);
    expect(rate.description).to.equal('RateSource[rowsPerSecond=10, rampUpTimeMs=5000, numPartitions=2]');
    expect(createSource('rate', { rampUpTime: '1m' }).description).to.contain('rampUpTimeMs=60000');
  });

  it('refuses unknown options, listing the accepted ones', () => {
    const err = errorOf(() => createSource('rate', { rowsPerSec: '5' }));
    expect(err.message).to.equal("unknown option 'rowsPerSec' for the rate source");
    expect(err.hint).to.equal('accepted options: rowsPerSecond, rampUpTime, numPartitions');
  });

  it('explains bad option values', () => {
    expect(errorOf(() => createSource('file', { path: 'x', maxFilesPerTrigger: 'many' })).message).to.equal(
      "option maxFilesPerTrigger of the file source must be a positive integer, found 'many'",
    );
    expect(errorOf(() => createSource('file', { path: 'x', format: 'xml' })).message).to.contain(
      'must be one of json, csv, text',
    );
    expect(errorOf(() => createSource('file', { path: 'x', mode: 'LENIENT' })).hint).to.equal(
      'use one of PERMISSIVE, DROPMALFORMED, FAILFAST',
    );
    expect(errorOf(() => createSource('file', { path: 'x', header: 'yes' })).message).to.contain(
      'must be true or false',
    );
    expect(errorOf(() => createSource('file', { path: 'x', schema: '{"id":' })).message).to.contain(
      'option schema of the file source is not valid JSON',
    );
    expect(errorOf(() => createSource('socket', { host: 'h', port: '70000' })).message).to.contain(
      'needs a host and a port',
    );
    expect(errorOf(() => createSource('rate', { rampUpTime: 'soon' })).code).to.equal('BAD_DURATION');
    expect(errorOf(() => createSource('csv', { path: 'x', format: 'json' })).message).to.contain(
      "format('csv') conflicts with option format=json",
    );
  });

  it('creates the kafka source and names the accepted formats for unknown ones', () => {
    expect(createSource('kafka', { bootstrap: 'h:1', subscribe: 'a,b', 'kafka.group.id': 'g' })).to.be.instanceOf(
      KafkaSource,
    );
    const err = errorOf(() => createSource('parquet', {}));
    expect(err.message).to.equal("unknown source format 'parquet'");
    expect(err.hint).to.equal('use one of file, socket, rate, nexmark, kafka, json, csv, text');
  });
});
