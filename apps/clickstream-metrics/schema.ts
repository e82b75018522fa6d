/** The clickstream events of seeds 003 and 004 (`sluice gen clickstream`), as JSON lines. */
export const CLICKSTREAM_SCHEMA = {
  user_id: 'string',
  session_id: 'string',
  event_type: 'string',
  page_url: 'string',
  timestamp: 'timestamp',
  referrer: 'string',
  device: { type: 'string' },
  geo: { country: 'string' },
  metadata: { amount: 'string' },
} as const;
