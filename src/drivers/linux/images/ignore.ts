// `.carteignore` in a build context, with .dockerignore's rules: one glob per
// line, `#` comments, `!` re-includes, the last matching line wins; a pattern
// also excludes everything below a matching folder.
import { minimatch } from 'minimatch';

export type IgnoreMatcher = (relPath: string) => boolean;

export function parseIgnore(text: string): IgnoreMatcher {
  const rules = text.split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => ({ negate: l.startsWith('!'), pattern: l.replace(/^!/, '').replace(/^\/+/, '').replace(/\/+$/, '') }));
  return (relPath: string) => {
    let ignored = false;
    for (const r of rules) {
      if (minimatch(relPath, r.pattern, { dot: true }) || minimatch(relPath, `${r.pattern}/**`, { dot: true })) ignored = !r.negate;
    }
    return ignored;
  };
}
