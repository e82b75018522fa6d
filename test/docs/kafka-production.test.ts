import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { KAFKA_SECURITY_OPTION_KEYS, kafkaSecurityOptions } from '../../lib/kafka/security-options.js';
import { KafkaSink } from '../../lib/sinks/kafka-sink.js';
import { parseSinkUri } from '../../lib/sinks/sink-factory.js';
import { createSource, parseSourceUri } from '../../lib/sources/source-uri.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The README's "Kafka in production" section. */
function section(): string {
  const at = README.indexOf('## Kafka in production');
  expect(at, 'README has a Kafka in production section').to.be.greaterThan(-1);
  const end = README.indexOf('\n## ', at + 1);
  return README.slice(at, end < 0 ? undefined : end);
}

/** The words of a shell command line: single-quoted strings and bare words. */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

/**
 * The production examples need a real cluster, so they are not run: every URI in them must be accepted by
 * sluice as written, with the security settings it names, and the option table must name real options.
 */
describe('README: Kafka in production', () => {
  const text = section();
  const blocks = [...text.matchAll(/```text\n([\s\S]*?)```/g)].map((m) => m[1]);
  const commands = blocks.flatMap((b) => b.split('\n').filter((l) => l.startsWith('sluice ')));

  it('has production examples for Confluent Cloud, MSK, Redpanda, mutual TLS and OAUTHBEARER', () => {
    expect(commands.length).to.be.at.least(5);
    for (const name of ['Confluent Cloud', 'MSK', 'Redpanda', 'mutual TLS', 'OAUTHBEARER']) {
      expect(blocks.join('\n')).to.include(name);
    }
  });

  it('every Kafka URI of the examples is accepted as written, with TLS or SASL settings', () => {
    let checked = 0;
    for (const command of commands) {
      const w = words(command);
      for (let i = 0; i < w.length - 1; i++) {
        const flag = w[i];
        const value = flag === '--sink' ? w[i + 1].replace(/^\w+=/, '') : w[i + 1];
        if (!value.startsWith('kafka://')) continue;
        const query = Object.fromEntries(new URLSearchParams(value.slice(value.indexOf('?') + 1)));
        const security = kafkaSecurityOptions('README example', query);
        expect(security?.protocol, value).to.match(/SSL|SASL/);
        if (flag === '--source') {
          const { format, options } = parseSourceUri(value);
          expect(() => createSource(format, options), value).to.not.throw();
        } else if (flag === '--sink') {
          expect(() => new KafkaSink(parseSinkUri(value).options), value).to.not.throw();
        } else {
          expect(flag).to.equal('--to');
        }
        checked++;
      }
    }
    expect(checked).to.be.at.least(6);
  });

  it('the option table names options that exist', () => {
    const table = text.slice(0, text.indexOf('```'));
    const named = [...table.matchAll(/`(kafka\.(?:security|ssl|sasl)\.[\w.]+)`/g)].map((m) => m[1]);
    expect(named.length).to.be.at.least(12);
    for (const option of named) expect(KAFKA_SECURITY_OPTION_KEYS as readonly string[]).to.include(option);
  });
});
