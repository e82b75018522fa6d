/**
 * Kafka's `sasl.jaas.config` value, as Spark and Java clients write it:
 * `org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="secret";`
 */
import { SluiceError } from '../errors.js';

/** One JAAS login module entry. */
export interface JaasConfig {
  /** The login module's class name, e.g. `org.apache.kafka.common.security.scram.ScramLoginModule`. */
  loginModule: string;
  /** `required`, `requisite`, `sufficient` or `optional`. */
  controlFlag: string;
  /** The module's options (`username`, `password`, ...). */
  options: Record<string, string>;
}

const CONTROL_FLAGS = ['required', 'requisite', 'sufficient', 'optional'];

type Token = { kind: 'word' | 'quoted'; text: string } | { kind: '=' | ';' };

function malformed(why: string): SluiceError {
  // The value holds a password: the message names the problem, never the text.
  return new SluiceError(
    'BAD_OPTION',
    `kafka.sasl.jaas.config is malformed: ${why}`,
    'write it as <LoginModule class> required username="..." password="...";',
  );
}

/** Splits the value into words, double-quoted strings (with backslash escapes), `=` and `;`. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '=' || c === ';') {
      tokens.push({ kind: c });
      i++;
    } else if (c === '"' || c === "'") {
      let out = '';
      i++;
      for (;;) {
        if (i >= text.length) throw malformed('a quoted value is not closed');
        const d = text[i++];
        if (d === c) break;
        out += d === '\\' && i < text.length ? text[i++] : d;
      }
      tokens.push({ kind: 'quoted', text: out });
    } else {
      const m = /^[^\s=;"']+/.exec(text.slice(i))!;
      tokens.push({ kind: 'word', text: m[0] });
      i += m[0].length;
    }
  }
  return tokens;
}

/**
 * Parses one login module entry. Kafka's client takes exactly one, ended by `;`; values may be quoted
 * (`password="p@ss;word"`) or bare words.
 * @throws SluiceError BAD_OPTION naming what is wrong (never echoing the value, which holds secrets).
 */
export function parseJaasConfig(text: string): JaasConfig {
  const tokens = tokenize(text);
  const next = (): Token | undefined => tokens.shift();
  const module = next();
  if (module?.kind !== 'word') throw malformed('it does not start with a login module class name');
  const flag = next();
  if (flag?.kind !== 'word' || !CONTROL_FLAGS.includes(flag.text.toLowerCase())) {
    throw malformed(`the class name must be followed by one of ${CONTROL_FLAGS.join(', ')}`);
  }
  const options: Record<string, string> = {};
  for (;;) {
    const t = next();
    if (t === undefined) throw malformed('it must end with ;');
    if (t.kind === ';') break;
    if (t.kind !== 'word') throw malformed('expected an option name such as username');
    if (next()?.kind !== '=') throw malformed(`option ${t.text} must be followed by =`);
    const value = next();
    if (value?.kind !== 'word' && value?.kind !== 'quoted') throw malformed(`option ${t.text} has no value`);
    options[t.text] = value.text;
  }
  if (tokens.length > 0) throw malformed('only one login module can be given');
  return { loginModule: module.text, controlFlag: flag.text.toLowerCase(), options };
}
