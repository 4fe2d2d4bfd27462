// Cartefile parsing: a Dockerfile-compatible subset, turned into typed steps
// with their line numbers. Pure: no file access. Variables ($VAR, ${VAR},
// ${VAR:-default}) from ARG and ENV are substituted in order, as Docker does.
//
// Supported: FROM scratch|<local image>, COPY/ADD (context files; ADD also
// unpacks local tar archives), COPY --from=host (a host program with the
// shared libraries it needs), ENV, WORKDIR, CMD, ENTRYPOINT, EXPOSE, USER,
// LABEL, ARG. RUN is refused: builds never execute commands.
import path from 'node:path';
import { CartefileError } from '../../../errors.js';

export type Step =
  | { op: 'FROM'; line: number; image: string }
  | { op: 'COPY'; line: number; source: 'context' | 'host'; sources: string[]; dest: string; extract: boolean; text: string }
  | { op: 'ENV'; line: number; vars: Array<[string, string]> }
  | { op: 'LABEL'; line: number; labels: Array<[string, string]> }
  | { op: 'WORKDIR'; line: number; path: string }
  | { op: 'CMD' | 'ENTRYPOINT'; line: number; argv: string[] }
  | { op: 'EXPOSE'; line: number; ports: string[] }
  | { op: 'USER'; line: number; user: string };

interface RawLine {
  line: number;
  op: string;
  rest: string;
}

/** Joins `\` continuations, drops comments and blank lines. */
function logicalLines(text: string): RawLine[] {
  const out: RawLine[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let current = lines[i]!;
    if (/^\s*(#|$)/.test(current)) continue;
    while (/\\\s*$/.test(current) && i + 1 < lines.length) {
      current = current.replace(/\\\s*$/, ' ');
      i++;
      if (!/^\s*#/.test(lines[i]!)) current += lines[i]!;
    }
    const m = /^\s*(\S+)\s*(.*)$/.exec(current)!;
    out.push({ line: start, op: m[1]!.toUpperCase(), rest: m[2]!.trim() });
  }
  return out;
}

/** Replaces $VAR, ${VAR} and ${VAR:-default}; unknown variables become empty, like Docker. */
export function substitute(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, braced?: string, dflt?: string, bare?: string) => {
    if (m === '\\$') return '$';
    const name = braced ?? bare!;
    const v = vars.get(name);
    return v !== undefined && v !== '' ? v : (dflt ?? '');
  });
}

/** `["a", "b"]` (exec form) or null when the text is not a JSON array of strings. */
function jsonArray(text: string): string[] | null {
  if (!text.startsWith('[')) return null;
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
  } catch {
    return null;
  }
}

/** `k=v k2="v 2"` pairs; also the old `ENV k value with spaces` form. */
function keyValues(rest: string, allowOldForm: boolean): Array<[string, string]> | null {
  if (allowOldForm && !/^[^\s=]+=/.test(rest)) {
    const m = /^(\S+)\s+(.*)$/.exec(rest);
    return m ? [[m[1]!, m[2]!]] : null;
  }
  const pairs: Array<[string, string]> = [];
  const re = /\s*([^\s=]+)=("((?:[^"\\]|\\.)*)"|'([^']*)'|(\S*))/y;
  let pos = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (!m) return null;
    pairs.push([m[1]!, m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : (m[4] ?? m[5] ?? '')]);
    pos = re.lastIndex;
    while (rest[pos] === ' ' || rest[pos] === '\t') pos++;
  }
  return pairs;
}

const HINTS: Record<string, string> = {
  RUN: 'RUN is not supported: carte builds never execute commands; copy prepared files in, or bring a program with COPY --from=host',
  ONBUILD: 'ONBUILD is not supported',
  HEALTHCHECK: 'HEALTHCHECK belongs in the manifest: spec.health',
  VOLUME: 'VOLUME belongs in the manifest: spec.volumes',
  STOPSIGNAL: 'STOPSIGNAL is not supported',
  SHELL: 'SHELL is not supported',
  MAINTAINER: 'MAINTAINER is obsolete: use LABEL maintainer=...',
};

export function parseCartefile(text: string, file: string, buildArgs: Record<string, string> = {}): Step[] {
  const fail = (line: number, message: string): never => {
    throw new CartefileError(file, line, message);
  };
  const vars = new Map<string, string>();
  const declaredArgs = new Set<string>();
  const steps: Step[] = [];
  let sawFrom = false;
  for (const { line, op, rest } of logicalLines(text)) {
    if (op === 'ARG') {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(rest);
      if (!m) fail(line, `ARG needs a name, optionally =default (got "${rest}")`);
      declaredArgs.add(m![1]!);
      const value = buildArgs[m![1]!] ?? (m![2] !== undefined ? substitute(m![2].replace(/^"(.*)"$/, '$1'), vars) : undefined);
      if (value !== undefined && !vars.has(m![1]!)) vars.set(m![1]!, value);
      continue;
    }
    if (!sawFrom && op !== 'FROM') fail(line, `the first instruction must be FROM (got ${op})`);
    const sub = (s: string) => substitute(s, vars);
    switch (op) {
      case 'FROM': {
        if (sawFrom) fail(line, 'only one FROM is supported (no multi-stage builds)');
        sawFrom = true;
        const image = sub(rest);
        if (!image || /\s/.test(image)) fail(line, `FROM takes one image (scratch or a local name:tag), got "${rest}"`);
        steps.push({ op: 'FROM', line, image });
        break;
      }
      case 'COPY':
      case 'ADD': {
        let body = rest;
        let source: 'context' | 'host' = 'context';
        for (let flag = /^--([a-z]+)(?:=(\S*))?\s+/.exec(body); flag; flag = /^--([a-z]+)(?:=(\S*))?\s+/.exec(body)) {
          if (flag[1] === 'from' && flag[2] === 'host' && op === 'COPY') source = 'host';
          else if (flag[1] === 'from') fail(line, `COPY --from=${flag[2]} is not supported (only --from=host, to copy a program from this machine)`);
          else fail(line, `${op} --${flag[1]} is not supported`);
          body = body.slice(flag[0].length);
        }
        const parts = jsonArray(body) ?? sub(body).split(/\s+/).filter(Boolean);
        if (parts.length < 2) fail(line, `${op} needs at least one source and a destination`);
        const sources = parts.slice(0, -1);
        const dest = parts.at(-1)!;
        for (const s of sources) {
          if (/^[a-z]+:\/\//i.test(s)) fail(line, `${op} from a URL is not supported (there is no network): download "${s}" into the build context`);
          if (source === 'host' && !path.isAbsolute(s)) fail(line, `COPY --from=host needs absolute host paths, got "${s}"`);
          if (source === 'context' && (path.isAbsolute(s) || path.normalize(s).startsWith('..'))) {
            fail(line, `"${s}" is outside the build context (sources are relative to it)`);
          }
        }
        steps.push({ op: 'COPY', line, source, sources, dest, extract: op === 'ADD', text: `${op} ${rest}` });
        break;
      }
      case 'ENV':
      case 'LABEL': {
        const pairs = keyValues(rest, op === 'ENV');
        if (!pairs || !pairs.length) fail(line, `${op} needs key=value pairs`);
        const values = pairs!.map(([k, v]) => [k, sub(v)] as [string, string]);
        if (op === 'ENV') {
          for (const [k, v] of values) vars.set(k, v);
          steps.push({ op, line, vars: values });
        } else {
          steps.push({ op, line, labels: values });
        }
        break;
      }
      case 'WORKDIR':
        if (!rest) fail(line, 'WORKDIR needs a path');
        steps.push({ op, line, path: sub(rest) });
        break;
      case 'CMD':
      case 'ENTRYPOINT': {
        const argv = jsonArray(rest) ?? (rest ? ['/bin/sh', '-c', rest] : null);
        if (!argv) fail(line, `${op} needs a command, e.g. ${op} ["node", "/app/server.js"]`);
        steps.push({ op, line, argv: argv! });
        break;
      }
      case 'EXPOSE': {
        const ports = sub(rest).split(/\s+/).filter(Boolean);
        for (const p of ports) if (!/^\d{1,5}(\/(tcp|udp))?$/.test(p)) fail(line, `"${p}" is not a port (use e.g. 8080 or 53/udp)`);
        steps.push({ op, line, ports });
        break;
      }
      case 'USER':
        if (!rest) fail(line, 'USER needs a user, e.g. USER 1000:1000');
        steps.push({ op, line, user: sub(rest) });
        break;
      default:
        fail(line, HINTS[op] ?? `unknown instruction ${op}`);
    }
  }
  if (!sawFrom) fail(1, 'a Cartefile starts with FROM (scratch, or a local image)');
  const unused = Object.keys(buildArgs).filter((k) => !declaredArgs.has(k));
  if (unused.length) fail(1, `build argument ${unused.map((u) => `"${u}"`).join(', ')} is not declared with ARG`);
  return steps;
}
