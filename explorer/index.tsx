/**
 * The GraphQL explorer (SPEC §7): GraphiQL, bundled by explorer/build.mjs into dist/explorer and
 * served by src/http/explorer.ts. Everything it loads comes from the service itself (no CDN):
 * the editor's web workers are bundled next to this file and found relative to it.
 */
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/style.css';
import './page.css';
import { createRoot } from 'react-dom/client';

const workers: Record<string, string> = { graphql: 'graphql.worker.js', json: 'json.worker.js' };

// Monaco asks for a worker per language; each is a classic script bundled beside this module.
globalThis.MonacoEnvironment = {
  getWorker(_workerId: string, label: string) {
    return new Worker(new URL(workers[label] ?? 'editor.worker.js', import.meta.url), { name: label });
  },
};

// The page is served at the GraphQL endpoint itself, so queries go back to where it came from.
const endpoint = `${window.location.origin}${window.location.pathname}`;

const defaultQuery = `# Paste your token in the Headers tab below, as
#   {"Authorization": "Bearer <token>"}
# (the service's start-up banner prints one; more with \`npm run token\`),
# then run this query with the ▶ button or Ctrl-Enter.
query Me {
  me {
    user {
      id
      email
      name
    }
  }
}
`;

createRoot(document.getElementById('graphiql')!).render(
  <GraphiQL
    fetcher={createGraphiQLFetcher({ url: endpoint })}
    defaultQuery={defaultQuery}
    defaultEditorToolsVisibility="headers"
    isHeadersEditorEnabled
    // Tokens stay out of localStorage unless the user opts in from the settings dialog.
    shouldPersistHeaders={false}
  />,
);
