// The one error module of carte. Every failure a user can cause or act on is a
// CarteError with an exit code; anything else reaching the CLI is a bug and is
// reported as an internal error.

/** Exit codes shared by every command: 0 ok, 1 runtime failure, 2 invalid input. */
export const ExitCode = { ok: 0, failure: 1, invalidInput: 2 } as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorCode =
  | 'manifest-invalid'
  | 'usage'
  | 'not-found'
  | 'conflict'
  | 'store-locked'
  | 'store-corrupt'
  | 'io'
  | 'driver'
  | 'image'
  | 'cartefile'
  | 'secret'
  | 'registry';

export class CarteError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCodeValue;
  /** Extra lines printed after the message, each on its own line (e.g. one per problem). */
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, opts: { exitCode?: ExitCodeValue; details?: string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = opts.exitCode ?? ExitCode.failure;
    this.details = opts.details ?? [];
  }
}

/** Where a problem sits in a manifest file. Lines and columns are 1-based. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/**
 * One thing wrong with a manifest: where, which field (dotted path such as
 * `spec.resources.memory`, empty for the document itself), and what to do.
 * A problem without a position concerns stored state rather than a file.
 */
export interface ManifestProblem {
  position: SourcePosition | null;
  path: string;
  message: string;
}

export function formatProblem(p: ManifestProblem): string {
  const where = p.position ? `${p.position.file}:${p.position.line}:${p.position.column}: ` : '';
  const field = p.path ? `${p.path}: ` : '';
  return `${where}${field}${p.message}`;
}

/** A set of manifests that cannot be applied; carries every problem found, not just the first. */
export class ManifestError extends CarteError {
  readonly problems: readonly ManifestProblem[];

  constructor(problems: ManifestProblem[], what = 'nothing was applied') {
    const n = problems.length;
    super('manifest-invalid', `${n} ${n === 1 ? 'problem' : 'problems'} in manifests; ${what}`, {
      exitCode: ExitCode.invalidInput,
      details: problems.map(formatProblem),
    });
    this.problems = problems;
  }
}

/** A command line that cannot be acted on (unknown flag, missing argument, bad value). */
export class UsageError extends CarteError {
  constructor(message: string) {
    super('usage', message, { exitCode: ExitCode.invalidInput });
  }
}

export class NotFoundError extends CarteError {
  constructor(message: string) {
    super('not-found', message);
  }
}

/** The request is valid but clashes with what is stored (e.g. another source owns the object). */
export class ConflictError extends CarteError {
  constructor(message: string, details: string[] = []) {
    super('conflict', message, { details });
  }
}

/**
 * A failure in the machine: which step (`mount rootfs`, `cni add`, `runc create`),
 * which instance or image, what the command printed. Message: "failed to <step> <resource>: <cause>".
 */
export class DriverError extends CarteError {
  readonly step: string;
  readonly resource: string;
  readonly stderr: string;

  constructor(step: string, resource: string, cause: string, opts: { stderr?: string; hint?: string; cause?: unknown } = {}) {
    const stderr = (opts.stderr ?? '').trim();
    super('driver', `failed to ${step} ${resource}: ${cause}${stderr ? `: ${lastLines(stderr)}` : ''}${opts.hint ? ` (${opts.hint})` : ''}`, { cause: opts.cause });
    this.step = step;
    this.resource = resource;
    this.stderr = stderr;
  }
}

function lastLines(text: string, n = 3): string {
  return text.split('\n').slice(-n).join(' | ');
}

/** A Cartefile that cannot be built, located at its line. */
export class CartefileError extends CarteError {
  constructor(file: string, line: number, message: string) {
    super('cartefile', `${file}:${line}: ${message}`, { exitCode: ExitCode.invalidInput });
  }
}
