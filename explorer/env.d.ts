// Stylesheets are bundled by esbuild (explorer/build.mjs), not by TypeScript.
declare module '*.css';

// The hook Monaco (GraphiQL's editor) calls to start its language workers.
// eslint-disable-next-line no-var
declare var MonacoEnvironment: { getWorker(workerId: string, label: string): Worker } | undefined;
