import { SluiceError } from '../errors.js';

/** The join types sluice runs, by Spark's canonical names. */
export type JoinType = 'inner' | 'left_outer' | 'left_semi' | 'left_anti' | 'right_outer' | 'full_outer';

/** Spark's spellings of each join type (JoinType.apply): case and underscores do not matter. */
const SPELLINGS: Record<string, JoinType | 'cross'> = {
  inner: 'inner',
  cross: 'cross',
  left: 'left_outer',
  leftouter: 'left_outer',
  right: 'right_outer',
  rightouter: 'right_outer',
  outer: 'full_outer',
  full: 'full_outer',
  fullouter: 'full_outer',
  semi: 'left_semi',
  leftsemi: 'left_semi',
  anti: 'left_anti',
  leftanti: 'left_anti',
};

/** The join type a user's `how` names, as Spark parses it; throws naming the accepted spellings. */
export function joinType(how: string): JoinType {
  const t = SPELLINGS[String(how).toLowerCase().replaceAll('_', '')];
  if (t === 'cross') {
    throw new SluiceError(
      'ANALYSIS',
      'cross joins are not supported on streaming Datasets',
      'join on columns or an equality condition with inner, left_outer, left_semi or left_anti',
    );
  }
  if (!t) {
    throw new SluiceError(
      'ANALYSIS',
      `unsupported join type '${how}'`,
      'use one of: inner, left_outer (left), left_semi (semi), left_anti (anti), right_outer (right), full_outer (outer)',
    );
  }
  return t;
}
