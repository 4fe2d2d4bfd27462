// Maps a path inside a parsed YAML document (['spec', 'ports', 0, 'publish'])
// to the line and column where it is written, using the node ranges that the
// `yaml` library keeps. A path that does not exist (a missing field) resolves
// to its deepest existing parent, which is where the user has to add it.
import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { SourcePosition } from '../errors.js';

export type PathSegment = string | number;

/** Display form of a path: `spec.ports[0].publish`. */
export function formatPath(segments: readonly PathSegment[]): string {
  return segments.reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
}

export class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    readonly file: string,
  ) {}

  private position(offset: number): SourcePosition {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }

  /** Position of the value at `segments` (or of its key, with `key: true`). */
  locate(segments: readonly PathSegment[], opts: { key?: boolean } = {}): SourcePosition {
    let node: unknown = this.doc.contents;
    let best: number = rangeStart(node) ?? 0;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const last = i === segments.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        if (last && opts.key) return this.position(rangeStart(pair.key) ?? best);
        node = pair.value;
        // A problem with a whole block mapping or list is shown at its key, the
        // line that names it; a scalar or a flow collection at its value.
        // `key:` with no value has a null node: point at the key then too.
        const atKey = (isMap(node) || isSeq(node)) && !node.flow;
        best = (atKey ? undefined : rangeStart(node)) ?? rangeStart(pair.key) ?? best;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        node = item;
        best = rangeStart(node) ?? best;
      } else {
        break;
      }
    }
    return this.position(best);
  }
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}
