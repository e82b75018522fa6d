/** A value users give `option()`; like Spark, it is kept as a string. */
export type OptionValue = string | number | boolean;

/** `values` with every value as a string, as sources and sinks read their options. */
export function stringOptions(values: Record<string, OptionValue>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)]));
}

/** The `option()` / `options()` half shared by DataStreamReader and DataStreamWriter. */
export abstract class OptionsBuilder {
  /** The options set so far, as strings. */
  protected readonly opts: Record<string, string> = {};

  /** One option (strings, numbers and booleans are accepted). */
  option(key: string, value: OptionValue): this {
    this.opts[key] = String(value);
    return this;
  }

  /** Several options at once. */
  options(values: Record<string, OptionValue>): this {
    Object.assign(this.opts, stringOptions(values));
    return this;
  }
}
