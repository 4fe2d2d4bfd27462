// The bytes of state.json: pretty JSON (people read it, tests JSON.parse it)
// whose last member is a checksum of everything before it. Writing:
//   T = JSON.stringify(data, null, 1)          // ends with "\n}"
//   file = T minus "\n}" + ',\n "checksum": "sha256:<hex of T>"\n}'
// Verifying cuts that exact trailer off, puts "\n}" back and hashes: any
// changed, missing or added byte (a torn write, a bad sector, a hand edit)
// fails. A file with no trailer was written by a carte from before checksums
// (or had its checksum line removed on purpose) and is read as plain JSON.
import { createHash } from 'node:crypto';
import { STATE_VERSION, type StateData } from './state.js';

const TRAILER = /,\n "checksum": "sha256:([0-9a-f]{64})"\n\}$/;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The file content for `data` (a `checksum` member in `data` itself is ignored). */
export function encodeState(data: StateData): string {
  const { checksum: _ignored, version, generation, writtenAt, ...rest } = data as StateData & { checksum?: unknown };
  // Version and generation first: a person opening the file sees them at once,
  // and a file cut short still says which generation it was.
  const text = JSON.stringify({ version, generation, writtenAt, ...rest }, null, 1);
  return `${text.slice(0, -2)},\n "checksum": "sha256:${sha256(text)}"\n}`;
}

export type Decoded =
  | { ok: true; data: StateData; checksummed: boolean }
  | { ok: false; reason: string };

/**
 * Checks and parses a state file's content. `reason` reads after "it is"
 * ("it is not valid JSON (…)") and after "damaged: " in `carte state verify`.
 */
export function decodeState(text: string): Decoded {
  const m = TRAILER.exec(text);
  if (m) {
    const body = `${text.slice(0, m.index)}\n}`;
    const actual = sha256(body);
    if (actual !== m[1]) {
      return { ok: false, reason: `not what carte wrote (checksum mismatch: stored sha256:${m[1]!.slice(0, 12)}…, content sha256:${actual.slice(0, 12)}…)` };
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: `not valid JSON (${(e as Error).message})` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, reason: 'not a carte state (not a JSON object)' };
  const data = parsed as StateData & { checksum?: unknown };
  if (data.version !== STATE_VERSION) return { ok: false, reason: `version ${JSON.stringify(data.version)}, this carte reads version ${STATE_VERSION}` };
  for (const key of ['services', 'sources', 'instances', 'images'] as const) {
    if (typeof data[key] !== 'object' || data[key] === null) return { ok: false, reason: `not a carte state (no "${key}" object)` };
  }
  if (!Array.isArray(data.events)) return { ok: false, reason: 'not a carte state (no "events" list)' };
  delete data.checksum;
  return { ok: true, data, checksummed: m !== null };
}
