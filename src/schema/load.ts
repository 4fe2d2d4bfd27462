// From files to validated, canonical Service objects. Reading (I/O) and
// parsing (pure) are separate so watched folders and Git checkouts can feed
// text they already hold. Every problem in every file is collected before
// anything is refused: the user fixes them all in one round.
import fs from 'node:fs';
import path from 'node:path';
import { Composer, isScalar, LineCounter, visit, type Document } from 'yaml';
import { ManifestError, UsageError, type ManifestProblem } from '../errors.js';
import { canonicalize } from './canonical.js';
import { checkService } from './checks.js';
import { Locator, type PathSegment } from './locate.js';
import { API_VERSION, KINDS, SECRET_KEY_PATTERN, type SealedSecretManifest, type ServiceManifest } from './service-schema.js';
import { checkSet, type SetMember } from './set-checks.js';
import { placeSyntaxErrors, shapeOf } from './syntax.js';
import { LIMITS, type ServiceObject } from './types.js';
import { closest, validateSealedSecret, validateService } from './validate.js';

export interface ManifestText {
  /** Path as shown in messages (relative to the working directory when inside it). */
  display: string;
  /** Folder that relative paths in the manifest resolve against. */
  baseDir: string;
  /**
   * The source tree the manifest came from, which a build context must stay
   * inside under the server policy (docs/policy.md): the folder given to
   * `apply -f` (a file's own folder, the working directory for stdin), the
   * watched folder, the Git checkout. Default: baseDir.
   */
  root?: string;
  text: string;
}

export interface LoadedService {
  object: ServiceObject;
  manifest: ServiceManifest;
  /** `file:line:column` of the document's metadata.name. */
  origin: string;
  file: string;
  /** The source tree (ManifestText.root), absolute. */
  root: string;
  locate: (segments: PathSegment[]) => ReturnType<Locator['locate']>;
}

/**
 * A SealedSecret document, checked but still sealed: its values are opened
 * (decrypted with the server's key) by src/secrets/sealed.ts, which needs the
 * key and is asynchronous; parsing stays pure.
 */
export interface LoadedSealedSecret {
  name: string;
  /** Key → the armored ciphertext, as written. */
  data: Record<string, string>;
  /** `file:line:column` of the document's metadata.name. */
  origin: string;
  file: string;
  locate: (segments: PathSegment[]) => ReturnType<Locator['locate']>;
}

/** Everything a set of manifest texts holds. */
export interface ManifestSet {
  services: LoadedService[];
  sealedSecrets: LoadedSealedSecret[];
}

const MANIFEST_FILE = /\.ya?ml$/i;
const SECRET_KEY = new RegExp(SECRET_KEY_PATTERN);

function displayPath(abs: string, cwd: string): string {
  const rel = path.relative(cwd, abs);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
}

function listManifestFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name.startsWith('.')) continue; // .git, editor swap files, hidden folders
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listManifestFiles(full));
    else if (entry.isFile() && MANIFEST_FILE.test(entry.name)) out.push(full);
  }
  return out;
}

/**
 * Reads `-f` arguments: a file, a folder (every *.yaml / *.yml below it,
 * hidden entries skipped, in name order) or `-` for standard input.
 */
export function readManifestInputs(inputs: readonly string[], opts: { cwd?: string; stdin?: () => string; allowEmpty?: boolean } = {}): ManifestText[] {
  const cwd = opts.cwd ?? process.cwd();
  const texts: ManifestText[] = [];
  for (const input of inputs) {
    if (input === '-') {
      texts.push({ display: '<stdin>', baseDir: cwd, root: cwd, text: (opts.stdin ?? (() => fs.readFileSync(0, 'utf8')))() });
      continue;
    }
    const abs = path.resolve(cwd, input);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(abs);
    } catch {
      throw new UsageError(`cannot read manifests from "${input}": no such file or folder`);
    }
    const files = stat.isDirectory() ? listManifestFiles(abs) : [abs];
    if (files.length === 0 && !opts.allowEmpty) throw new UsageError(`no *.yaml or *.yml files in folder "${input}"`);
    for (const file of files) {
      texts.push({ display: displayPath(file, cwd), baseDir: path.dirname(file), root: stat.isDirectory() ? abs : path.dirname(abs), text: fs.readFileSync(file, 'utf8') });
    }
  }
  return texts;
}

/** One YAML document of a text, as plain data, with the locator of its fields. */
export interface YamlDocument {
  data: unknown;
  locator: Locator;
}

/**
 * Parses every document of a text into plain data with positions: syntax
 * errors, too-deep nesting and alias bombs become located problems. Empty
 * documents (a trailing ---, only comments) are skipped. Shared by manifests
 * and the server policy file.
 */
export function readYamlDocuments(t: { display: string; text: string }): { docs: YamlDocument[]; problems: ManifestProblem[] } {
  const docs: YamlDocument[] = [];
  const problems: ManifestProblem[] = [];
  const lines = countLines(t.text);
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { file: t.display, line, column: col };
  };
  const shape = shapeOf(t.text, LIMITS.nestingDepth);
  if (shape.tooDeepAt !== null) {
    // Composing such a text would exhaust the stack (see syntax.ts); nothing else in the file is read.
    problems.push({
      position: at(shape.tooDeepAt), path: '',
      message: `lists and mappings nested more than ${LIMITS.nestingDepth} deep: a Service needs at most 5 levels (remove the extra nesting)`,
    });
    return { docs, problems };
  }
  // What parseAllDocuments does, on the CST already read. logLevel 'error': a mapping used as
  // a key would otherwise print a process warning from inside the daemon; it becomes a
  // stringified key, which the schema reports as unknown.
  const list = Array.from(new Composer({ prettyErrors: false, uniqueKeys: true, logLevel: 'error' }).compose(shape.tokens));
  const syntaxErrors = list.flatMap((d) => d.errors);
  const offsets = placeSyntaxErrors(t.text, syntaxErrors, shape.unclosed);
  for (const doc of list) {
    const locator = new Locator(doc, lines, t.display);
    if (doc.errors.length) {
      for (const e of doc.errors) {
        problems.push({ position: at(offsets[syntaxErrors.indexOf(e)]!), path: '', message: `YAML syntax: ${firstLine(e.message)}` });
      }
      continue;
    }
    // An empty document (a trailing ---, or only comments) holds nothing to apply.
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue;
    const data = toData(doc);
    if (data instanceof AliasProblem) {
      problems.push({ position: at(data.offset), path: '', message: data.message });
      continue;
    }
    docs.push({ data, locator });
  }
  return { docs, problems };
}

/** Parses and validates manifest texts; returns services, sealed secrets and every problem found (per document and across the set). */
export function parseManifests(texts: readonly ManifestText[]): ManifestSet & { problems: ManifestProblem[] } {
  const services: LoadedService[] = [];
  const sealedSecrets: LoadedSealedSecret[] = [];
  const problems: ManifestProblem[] = [];
  for (const t of texts) {
    const read = readYamlDocuments(t);
    problems.push(...read.problems);
    for (const { data, locator } of read.docs) {
      const kindProblem = checkKind(data, locator);
      if (kindProblem) {
        problems.push(kindProblem);
        continue;
      }
      const origin = () => {
        const o = locator.locate(['metadata', 'name']);
        return `${o.file}:${o.line}:${o.column}`;
      };
      if ((data as { kind: string }).kind === 'SealedSecret') {
        const sealed = parseSealedSecret(data, locator);
        if (Array.isArray(sealed)) problems.push(...sealed);
        else sealedSecrets.push({ ...sealed, origin: origin(), file: t.display, locate: (segments) => locator.locate(segments) });
        continue;
      }
      const schemaProblems = validateService(data, locator);
      if (schemaProblems.length) {
        problems.push(...schemaProblems);
        continue;
      }
      const manifest = data as ServiceManifest;
      const semantic = checkService(manifest, locator);
      if (semantic.length) {
        problems.push(...semantic);
        continue;
      }
      services.push({
        object: canonicalize(manifest, t.baseDir),
        manifest,
        origin: origin(),
        file: t.display,
        root: t.root ?? t.baseDir,
        locate: (segments) => locator.locate(segments),
      });
    }
  }
  // Whether a dependency exists depends on what is stored: planApply checks that.
  problems.push(...checkSet(services.map(toSetMember), { dependenciesKnown: false }));
  const firstSealed = new Map<string, LoadedSealedSecret>();
  for (const s of sealedSecrets) {
    const first = firstSealed.get(s.name);
    if (first) problems.push({ position: s.locate(['metadata', 'name']), path: 'metadata.name', message: `secret "${s.name}" is already defined at ${first.origin}` });
    else firstSealed.set(s.name, s);
  }
  return { services, sealedSecrets, problems: sortProblems(problems, texts.map((t) => t.display)) };
}

/** A SealedSecret's schema and key names; its values are opened later (they need the server's key). */
function parseSealedSecret(data: unknown, locator: Locator): Pick<LoadedSealedSecret, 'name' | 'data'> | ManifestProblem[] {
  const problems = validateSealedSecret(data, locator);
  if (problems.length) return problems;
  const m = data as SealedSecretManifest;
  for (const key of Object.keys(m.spec.data)) {
    if (!SECRET_KEY.test(key)) {
      problems.push({
        position: locator.locate(['spec', 'data', key], { key: true }), path: `spec.data.${key}`,
        message: `${JSON.stringify(key)} is not a valid secret key (letters, digits, "-", "_" and ".", at most 253 characters)`,
      });
    }
  }
  return problems.length ? problems : { name: m.metadata.name, data: { ...m.spec.data } };
}

export function toSetMember(s: LoadedService): SetMember {
  return { name: s.object.name, spec: s.object.spec, locate: s.locate, describe: s.origin };
}

/** Reads, parses and validates; throws one ManifestError carrying every problem. Sealed secrets are left out. */
export function loadManifests(inputs: readonly string[], opts: Parameters<typeof readManifestInputs>[1] = {}): LoadedService[] {
  return loadManifestSet(inputs, opts).services;
}

/** Reads, parses and validates services and sealed secrets; throws one ManifestError carrying every problem. */
export function loadManifestSet(inputs: readonly string[], opts: Parameters<typeof readManifestInputs>[1] = {}): ManifestSet {
  const { services, sealedSecrets, problems } = parseManifests(readManifestInputs(inputs, opts));
  if (problems.length) throw new ManifestError(problems);
  return { services, sealedSecrets };
}

/** Orders problems as a reader meets them: by file (in input order), line, column. */
function sortProblems(problems: ManifestProblem[], files: string[]): ManifestProblem[] {
  const key = (p: ManifestProblem) => (p.position ? [files.indexOf(p.position.file), p.position.line, p.position.column] : [Infinity, 0, 0]);
  return problems
    .map((p, i) => ({ p, i, k: key(p) }))
    .sort((a, b) => a.k[0]! - b.k[0]! || a.k[1]! - b.k[1]! || a.k[2]! - b.k[2]! || a.i - b.i)
    .map((x) => x.p);
}

function checkKind(data: unknown, locator: Locator): ManifestProblem | null {
  const at = (segments: PathSegment[], message: string): ManifestProblem => ({
    position: locator.locate(segments), path: segments.join('.'), message,
  });
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return at([], `a manifest must be a mapping with apiVersion, kind, metadata and spec, not ${Array.isArray(data) ? 'a list' : JSON.stringify(data)}`);
  }
  const d = data as Record<string, unknown>;
  if (d.apiVersion === undefined) return at([], `missing required field "apiVersion" (write apiVersion: ${API_VERSION})`);
  if (d.apiVersion !== API_VERSION) return at(['apiVersion'], `${JSON.stringify(d.apiVersion)} is not a known apiVersion (write apiVersion: ${API_VERSION})`);
  if (d.kind === undefined) return at([], `missing required field "kind" (write kind: ${KINDS.join(' or ')})`);
  if (d.kind === 'Secret') {
    return at(['kind'], '"Secret" is not a kind of carte/v1: secret values never sit in manifests (store one with "carte secret set NAME", or commit the output of "carte secret seal NAME" as a SealedSecret)');
  }
  if (!(KINDS as readonly unknown[]).includes(d.kind)) {
    const guess = typeof d.kind === 'string' ? closest(d.kind, KINDS) : undefined;
    return at(['kind'], `${JSON.stringify(d.kind)} is not a kind of ${API_VERSION} (${guess ? `did you mean "${guess}"?` : `known kinds: ${KINDS.join(', ')}`})`);
  }
  return null;
}

/**
 * Line starts found in the text itself. The `yaml` parser's own line
 * counting skips newlines inside some malformed tokens (seen by the fuzz
 * test with lines ending in \r\r\n), which put positions past the end of a line.
 */
function countLines(text: string): LineCounter {
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
  return lines;
}

class AliasProblem {
  constructor(readonly offset: number, readonly message: string) {}
}

/**
 * The document as plain data. Aliases are where this can fail: one naming no
 * anchor, or many nested ones that would expand a small text into gigabytes
 * (the "billion laughs"); `yaml` throws a ReferenceError for both.
 */
function toData(doc: Document): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    const unresolved = /^Unresolved alias .*: (.*)$/.exec(e.message)?.[1];
    let offset = doc.range?.[0] ?? 0;
    // The error does not say which alias; the first one (or the first naming the missing anchor) is where to look.
    visit(doc, {
      Alias(_, node) {
        if (unresolved !== undefined && node.source !== unresolved) return undefined;
        offset = node.range?.[0] ?? offset;
        return visit.BREAK;
      },
    });
    return new AliasProblem(offset, unresolved !== undefined
      ? `YAML alias *${unresolved} names no anchor before it (write &${unresolved} on an earlier value, or write the value out)`
      : `YAML aliases here would expand to more than ${MAX_ALIAS_COUNT} copies of values (write the values out instead of nesting aliases)`);
  }
}

/** `yaml`'s own guard against alias bombs: how many values aliases may expand to. */
const MAX_ALIAS_COUNT = 100;

function firstLine(message: string): string {
  // yaml's messages end with " at line L, column C" plus a code excerpt; position is printed separately.
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
