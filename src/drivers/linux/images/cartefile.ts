// Cartefile parsing: a Dockerfile-compatible subset, turned into typed steps
// with their line numbers. Pure: no file access. Variables ($VAR, ${VAR},
// ${VAR:-default}) from ARG and ENV are substituted in order, as Docker does.
//
// Supported: FROM scratch|<local image>|<earlier stage> [AS name] (several
// stages), RUN (shell or exec form; executed by the builder in a build
// container), COPY/ADD (context files; ADD also unpacks local tar archives),
// COPY --from=host (a host program with the shared libraries it needs),
// COPY --from=<stage|image>, COPY --chown, ENV, WORKDIR, CMD, ENTRYPOINT,
// EXPOSE, USER, LABEL, ARG (before FROM too). Everything else is refused with
// its line and what to do instead.
import path from 'node:path';
import { CartefileError } from '../../../errors.js';

export type Step =
  /** Starts stage `stage` (0-based) from an image, scratch, or an earlier stage (`fromStage`). */
  | { op: 'FROM'; line: number; image: string; stage: number; name?: string; fromStage?: number }
  /**
   * `source`: the build context, this machine (host), an earlier stage's
   * result (`fromStage`) or a local image (`fromImage`). `chown`: `user[:group]`.
   */
  | { op: 'COPY'; line: number; source: 'context' | 'host' | 'stage' | 'image'; sources: string[]; dest: string; extract: boolean; text: string; fromStage?: number; fromImage?: string; chown?: string }
  /** `argv` is what runs (shell form: /bin/sh -c TEXT); `args`: the stage's ARG values, given to it as environment. */
  | { op: 'RUN'; line: number; argv: string[]; args: Array<[string, string]>; text: string }
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
  ONBUILD: 'ONBUILD is not supported: write the instructions into the Cartefile that builds on this image',
  HEALTHCHECK: 'HEALTHCHECK is not supported: put the health check in the manifest (spec.health)',
  VOLUME: 'VOLUME is not supported: declare volumes in the manifest (spec.volumes)',
  STOPSIGNAL: 'STOPSIGNAL is not supported: carte stops instances with SIGTERM, then SIGKILL after the grace period',
  SHELL: 'SHELL is not supported: RUN uses /bin/sh -c; use the exec form RUN ["bash", "-c", "..."] for another shell',
  MAINTAINER: 'MAINTAINER is not supported: it is obsolete, use LABEL maintainer=...',
};

const STAGE_NAME = /^[a-z][a-z0-9._-]*$/;

export function parseCartefile(text: string, file: string, buildArgs: Record<string, string> = {}): Step[] {
  const fail = (line: number, message: string): never => {
    throw new CartefileError(file, line, message);
  };
  // ARGs before the first FROM are visible in FROM lines and (as carte always
  // did) in every stage; inside a stage, ARG declares a build variable of it.
  const globals = new Map<string, string>();
  let vars = new Map<string, string>();
  let stageArgs = new Map<string, string>();
  const declaredArgs = new Set<string>();
  const stageNames = new Map<string, number>();
  const steps: Step[] = [];
  let stage = -1;
  for (const { line, op, rest } of logicalLines(text)) {
    if ((op === 'RUN' || op === 'COPY' || op === 'ADD') && /(^|\s)<<-?(["']?)[A-Za-z_][A-Za-z0-9_]*\2(\s|$)/.test(rest)) {
      fail(line, `${op} with a heredoc (<<) is not supported: put the text in a file of the build context and COPY it`);
    }
    if (op === 'ARG') {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(rest);
      if (!m) fail(line, `ARG needs a name, optionally =default (got "${rest}")`);
      const name = m![1]!;
      declaredArgs.add(name);
      const dflt = m![2] !== undefined ? substitute(m![2].replace(/^"(.*)"$/, '$1'), vars) : undefined;
      const value = buildArgs[name] ?? (stage >= 0 && dflt === undefined ? globals.get(name) : dflt);
      if (stage < 0) {
        if (value !== undefined) globals.set(name, value);
      } else {
        stageArgs.set(name, value ?? '');
      }
      if (value !== undefined && (stage < 0 ? !vars.has(name) : true)) vars.set(name, value);
      continue;
    }
    if (stage < 0 && op !== 'FROM') fail(line, `the first instruction must be FROM (got ${op})`);
    const sub = (s: string) => substitute(s, vars);
    switch (op) {
      case 'FROM': {
        const flag = /^--[a-z-]+/.exec(rest);
        if (flag) fail(line, `FROM ${flag[0]} is not supported: carte builds for this machine's platform only`);
        const m = /^(\S+)(?:\s+[Aa][Ss]\s+(\S+))?$/.exec(substitute(rest, globals));
        if (!m) fail(line, `FROM takes one image (scratch, a local name:tag or an earlier stage), optionally AS name; got "${rest}"`);
        stage++;
        const image = m![1]!;
        const name = m![2]?.toLowerCase();
        if (name !== undefined) {
          if (!STAGE_NAME.test(name)) fail(line, `"${m![2]}" is not a stage name (use lowercase letters, digits, ".", "_", "-")`);
          if (stageNames.has(name)) fail(line, `stage "${name}" is already defined on an earlier FROM`);
          stageNames.set(name, stage);
        }
        const fromStage = stageNames.get(image.toLowerCase());
        steps.push({ op: 'FROM', line, image, stage, ...(name !== undefined ? { name } : {}), ...(fromStage !== undefined && fromStage < stage ? { fromStage } : {}) });
        vars = new Map(globals);
        stageArgs = new Map();
        break;
      }
      case 'RUN': {
        const flag = /^--([a-z-]+)/.exec(rest);
        if (flag) {
          fail(line, flag[1] === 'network'
            ? 'RUN --network is not supported: give the whole build network access with "carte build --network" (if the server policy allows it)'
            : `RUN --${flag[1]} is not supported: copy what the step needs into the build context (COPY) instead`);
        }
        if (!rest) fail(line, 'RUN needs a command, e.g. RUN mkdir /data');
        const argv = jsonArray(rest) ?? ['/bin/sh', '-c', rest];
        if (!argv.length) fail(line, 'RUN needs a command, e.g. RUN ["mkdir", "/data"]');
        steps.push({ op: 'RUN', line, argv, args: [...stageArgs], text: `RUN ${rest}` });
        break;
      }
      case 'COPY':
      case 'ADD': {
        let body = rest;
        let source: 'context' | 'host' | 'stage' | 'image' = 'context';
        let fromStage: number | undefined;
        let fromImage: string | undefined;
        let chown: string | undefined;
        for (let flag = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(body); flag; flag = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(body)) {
          const value = sub(flag[2] ?? '');
          if (flag[1] === 'from' && op === 'COPY') {
            if (!value) fail(line, 'COPY --from needs a stage (name or number), an image, or host');
            if (value === 'host') source = 'host';
            else if (/^\d+$/.test(value)) {
              if (Number(value) >= stage) fail(line, `COPY --from=${value}: there is no earlier stage ${value} (stages count from 0; this is stage ${stage})`);
              source = 'stage';
              fromStage = Number(value);
            } else if (stageNames.has(value.toLowerCase())) {
              source = 'stage';
              fromStage = stageNames.get(value.toLowerCase());
            } else {
              source = 'image';
              fromImage = value;
            }
          } else if (flag[1] === 'chown') {
            if (!/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(value)) fail(line, `${op} --chown=${value}: give user[:group], e.g. --chown=1000:1000`);
            chown = value;
          } else {
            fail(line, `${op} --${flag[1]} is not supported: ${flag[1] === 'from' ? 'ADD takes files of the build context; use COPY --from' : 'remove the flag'}`);
          }
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
        steps.push({
          op: 'COPY', line, source, sources, dest, extract: op === 'ADD', text: `${op} ${rest}`,
          ...(fromStage !== undefined ? { fromStage } : {}), ...(fromImage !== undefined ? { fromImage } : {}), ...(chown !== undefined ? { chown } : {}),
        });
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
  if (stage < 0) fail(1, 'a Cartefile starts with FROM (scratch, or a local image)');
  const unused = Object.keys(buildArgs).filter((k) => !declaredArgs.has(k));
  if (unused.length) fail(1, `build argument ${unused.map((u) => `"${u}"`).join(', ')} is not declared with ARG`);
  return steps;
}
