import { defineApp } from '../../../lib/app/app.js';

interface Joined {
  id: number;
  user: string;
  amount: number;
  country: string | null;
}

/** A test app: events joined with a static file of users (a stream-static left outer join), then a row function. */
export default defineApp<{ users: string }>({
  name: 'side-join',
  description: 'test app: events with their user country',
  options: { users: { type: 'string', describe: 'JSON lines {user, country}', default: 'data/users.jsonl' } },
  inputs: {
    events: {
      describe: 'JSON events {id, user, amount}',
      default: 'file:data/none',
      format: 'json',
      schema: { id: 'long', user: 'string', amount: 'double' },
    },
  },
  outputs: { out: { describe: 'events with country', default: 'console:', outputMode: 'append' } },
  build: ({ session, input, options }) => ({
    out: input('events')
      .join(session.read.schema('user STRING, country STRING').json(options.users), 'user', 'left_outer')
      .map((r) => ({ ...(r as unknown as Joined), label: `${(r as unknown as Joined).country ?? '-'}:${r.id}` }), {
        user: 'string',
        id: 'long',
        amount: 'double',
        country: 'string',
        label: 'string',
      }),
  }),
});
