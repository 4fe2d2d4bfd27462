// What the `yaml` library's syntax errors do not say well, read from its CST:
// where an unclosed quote or bracket opens, and how deeply a text nests.
//
// An unclosed quote swallows the rest of the file, so the library reports
// "Missing closing quote" at the very end; an unclosed [ or { is reported
// where the next line starts. Both are far from what the user must fix: the
// opening character. The CST keeps every token's offset, so the error can be
// moved back there.
//
// The walk is iterative on purpose: `CST.visit` and the library's composer
// recurse once per nesting level, and a text of 10 000 nested lists makes the
// composer report "Maximum call stack size exceeded" at an arbitrary place.
// Measuring depth first lets load.ts refuse such a text before composing it.
import { Parser, type CST } from 'yaml';

export type Opener = '"' | "'" | '[' | '{';

/** A quoted scalar or flow collection that never closes, as the library judges it. */
export interface Unclosed {
  offset: number;
  opener: Opener;
}

export interface TextShape {
  /** The CST, for `yaml`'s Composer: lexing twice would double the cost of loading. */
  tokens: CST.Token[];
  /** Offset of the earliest list or mapping nested deeper than the limit, or null. */
  tooDeepAt: number | null;
  /** Unclosed quotes and brackets, in text order. */
  unclosed: Unclosed[];
}

const CLOSER: Record<string, string> = { '[': ']', '{': '}' };

/** Reads the CST of `text` once: unclosed tokens, and the first collection deeper than `maxDepth`. */
export function shapeOf(text: string, maxDepth: number): TextShape {
  let tooDeepAt: number | null = null;
  const unclosed: Unclosed[] = [];
  const tokens: CST.Token[] = [];
  // Depth counts lists and mappings: a document's root mapping is depth 1.
  const stack: Array<{ token: CST.Token; depth: number }> = [];
  for (const top of new Parser().parse(text)) {
    tokens.push(top);
    stack.push({ token: top, depth: 0 });
    while (stack.length) {
      const { token, depth } = stack.pop()!;
      switch (token.type) {
        case 'document':
          if (token.value) stack.push({ token: token.value, depth });
          break;
        case 'block-map':
        case 'block-seq':
        case 'flow-collection': {
          if (token.type === 'flow-collection') {
            const opener = token.start.source;
            if ((opener === '[' || opener === '{') && token.end[0]?.source !== CLOSER[opener]) unclosed.push({ offset: token.offset, opener });
          }
          if (depth + 1 > maxDepth) {
            // Nothing below is looked at: the whole text is refused anyway.
            if (tooDeepAt === null || token.offset < tooDeepAt) tooDeepAt = token.offset;
            break;
          }
          for (const item of token.items) {
            if (item.value) stack.push({ token: item.value, depth: depth + 1 });
            if ('key' in item && item.key) stack.push({ token: item.key, depth: depth + 1 });
          }
          break;
        }
        case 'double-quoted-scalar':
        case 'single-quoted-scalar': {
          // The library's own test (resolve-flow-scalar.js), so each of its errors has a token here.
          const quote = token.type === 'double-quoted-scalar' ? '"' : "'";
          if (token.source.length === 1 || !token.source.endsWith(quote)) unclosed.push({ offset: token.offset, opener: quote });
          break;
        }
        default:
          break;
      }
    }
  }
  unclosed.sort((a, b) => a.offset - b.offset);
  return { tokens, tooDeepAt, unclosed };
}

/** The parts of a `yaml` error that placing it needs. */
export interface ErrorAt {
  message: string;
  pos: [number, number];
}

/** Which opener an error message is about, if it is about an unclosed token. */
function openerOf(message: string): Opener | null {
  const quote = /^Missing closing (["'])quote/.exec(message);
  if (quote) return quote[1] as Opener;
  // "Flow sequence must end with a ]" at the root, "... in block collection must be sufficiently indented and end with a ]" below.
  const flow = /^Flow (sequence|map) .*end with a [\]}]/.exec(message);
  if (flow) return flow[1] === 'sequence' ? '[' : '{';
  return null;
}

/**
 * Offsets to report the errors of one text at, in the order given: an
 * unclosed quote or bracket at its opening character (the innermost one not
 * yet blamed that opens before the library's position, so nested unclosed
 * brackets each get their own), anything else where the library put it, but
 * never past the end of the last line.
 */
export function placeSyntaxErrors(text: string, errors: readonly ErrorAt[], unclosed: readonly Unclosed[]): number[] {
  const lastLineEnd = text.replace(/[\r\n]+$/, '').length;
  const blamed = new Set<Unclosed>();
  return errors.map((e) => {
    const at = e.pos[0];
    const opener = openerOf(e.message);
    if (opener) {
      const token = unclosed.findLast((u) => u.opener === opener && u.offset <= at && !blamed.has(u));
      if (token) {
        blamed.add(token);
        return token.offset;
      }
    }
    return Math.min(Math.max(at, 0), lastLineEnd);
  });
}
