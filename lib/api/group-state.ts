import type { GroupStateTimeout as TimeoutKind } from '../plan/operators/group-state.js';

export type { GroupState } from '../plan/operators/group-state.js';

/** How the keys of mapGroupsWithState / flatMapGroupsWithState time out (Spark's GroupStateTimeout). */
export type GroupStateTimeout = TimeoutKind;

/** The timeout kinds as constants, for code that reads like Spark's `GroupStateTimeout.ProcessingTimeTimeout()`. */
export const GroupStateTimeout = {
  NoTimeout: 'NoTimeout',
  ProcessingTimeTimeout: 'ProcessingTimeTimeout',
  EventTimeTimeout: 'EventTimeTimeout',
} as const satisfies Record<GroupStateTimeout, GroupStateTimeout>;

/** All timeout kinds, for validation messages. */
export const GROUP_STATE_TIMEOUTS: readonly GroupStateTimeout[] = Object.values(GroupStateTimeout);
