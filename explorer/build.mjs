// Bundles the GraphQL explorer (explorer/index.tsx: GraphiQL, React, its CSS and Monaco's
// workers) into dist/explorer, so the service serves it with no CDN (run by `npm run build`).
// Output names are fixed and each file is replaced atomically, so two builds running at once
// (parallel test files) never leave a half-written file for a page that is being loaded.
import { build } from 'esbuild';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.join(here, '..', 'dist', 'explorer');

// Monaco and its GraphQL mode come with GraphiQL's editor package: resolve the workers from
// there, at the versions GraphiQL was built with.
const fromGraphiqlReact = createRequire(createRequire(import.meta.url).resolve('@graphiql/react/package.json'));
const worker = (specifier) => fromGraphiqlReact.resolve(specifier);

const common = {
  bundle: true,
  minify: true,
  legalComments: 'linked',
  target: ['es2022'],
  define: { 'process.env.NODE_ENV': '"production"' },
  outdir,
  write: false,
  logLevel: 'warning',
};

const results = await Promise.all([
  build({
    ...common,
    entryPoints: { explorer: path.join(here, 'index.tsx') },
    format: 'esm',
    jsx: 'automatic',
    loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file' },
    assetNames: '[name]-[hash]',
  }),
  // Workers are started with `new Worker(url)`: classic scripts.
  build({
    ...common,
    entryPoints: {
      'editor.worker': worker('monaco-editor/esm/vs/editor/editor.worker.js'),
      'json.worker': worker('monaco-editor/esm/vs/language/json/json.worker.js'),
      'graphql.worker': worker('monaco-graphql/esm/graphql.worker.js'),
    },
    format: 'iife',
  }),
]);

fs.mkdirSync(outdir, { recursive: true });
for (const file of results.flatMap((r) => r.outputFiles)) {
  const temporary = `${file.path}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, file.contents);
  fs.renameSync(temporary, file.path);
}
