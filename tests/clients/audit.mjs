// Runs graphql-http's GraphQL-over-HTTP audit against a running server and
// prints every requirement with its result. Exits 1 if a MUST fails.
// Usage: node audit.mjs http://127.0.0.1:PORT/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const results = await auditServer({ url });
let mustFailures = 0;
for (const result of results) {
  const line = `${result.status.padEnd(6)} ${result.name}`;
  if (result.status === 'ok') {
    console.log(line);
    continue;
  }
  if (result.name.startsWith('MUST')) mustFailures += 1;
  console.log(`${line}\n       ${result.reason}`);
}
const count = (status) => results.filter((r) => r.status === status).length;
console.log(
  `${results.length} audits: ${count('ok')} ok, ${count('warn')} warn, ` +
    `${count('notice')} notice, ${count('error')} error; ${mustFailures} MUST failed`,
);
process.exit(mustFailures === 0 ? 0 : 1);
