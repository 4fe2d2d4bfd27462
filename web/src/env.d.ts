// esbuild bundles imported CSS into app.css; to TypeScript such an import is just a side effect.
declare module '*.css';
