#!/usr/bin/env node
// Builds the dashboard's page (web/) into dist/web/: index.html, one minified
// app.js (Preact, uPlot and the views) and one app.css (uPlot's CSS and ours).
// Type-checks web/ against the API contract first. Run by `make build` after tsc.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = path.join(ROOT, 'dist', 'web');

try {
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', path.join(ROOT, 'web', 'tsconfig.json')], { stdio: 'inherit' });
} catch {
  console.error('build-web: the page does not type-check (see above); dist/web/ left as it was');
  process.exit(1);
}

fs.mkdirSync(OUT, { recursive: true });
await esbuild.build({
  absWorkingDir: ROOT,
  entryPoints: { app: 'web/src/main.tsx' },
  outdir: OUT,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: 'web/tsconfig.json',
  legalComments: 'eof',
  logLevel: 'warning',
});
fs.copyFileSync(path.join(ROOT, 'web', 'index.html'), path.join(OUT, 'index.html'));

const sizes = ['index.html', 'app.js', 'app.css'].map((f) => {
  const body = fs.readFileSync(path.join(OUT, f));
  return `${f} ${body.length} B (${gzipSync(body).length} B gzip)`;
});
console.log(`dist/web: ${sizes.join(', ')}`);
