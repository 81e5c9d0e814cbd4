// Apollo Client 4 with its PersistedQueryLink, as mobile apps use it, against
// a running server. Prints one JSON object: for each of two fresh clients,
// the requests its link sent (method, whether the query text went along, the
// error code it got back) and the data it received.
// Usage: node apollo.mjs http://127.0.0.1:PORT/graphql < operation.graphql
import { readFileSync } from 'node:fs';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { sha256 } from 'crypto-hash';

const url = process.argv[2];
const query = gql(readFileSync(0, 'utf8'));

async function run({ useGETForHashedQueries }) {
  const requests = [];
  // Records what went over the wire, then passes the exchange on untouched.
  const recordingFetch = async (input, init) => {
    const target = new URL(typeof input === 'string' ? input : input.url);
    const body = init?.body ? JSON.parse(init.body) : null;
    const sentQuery = Boolean(body?.query || target.searchParams.get('query'));
    const response = await fetch(input, init);
    const text = await response.clone().text();
    let code = null;
    try {
      code = JSON.parse(text).errors?.[0]?.extensions?.code ?? null;
    } catch {
      code = `unparsable ${response.status}`;
    }
    requests.push({ method: init?.method ?? 'GET', sentQuery, status: response.status, code });
    return response;
  };
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: ApolloLink.from([
      new PersistedQueryLink({ sha256, useGETForHashedQueries }),
      new HttpLink({ uri: url, fetch: recordingFetch }),
    ]),
  });
  const { data, error } = await client.query({ query, fetchPolicy: 'network-only' });
  return { requests, data: data ?? null, error: error ? String(error) : null };
}

const first = await run({ useGETForHashedQueries: false });
const second = await run({ useGETForHashedQueries: true });
console.log(JSON.stringify({ first, second }));
