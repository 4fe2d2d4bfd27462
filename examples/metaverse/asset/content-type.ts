// How an upload's bytes are served back. Anyone may upload anything, and the
// files are served from the same origin as the API: a file served as
// text/html, image/svg+xml or application/javascript would run its scripts
// with that origin (stored XSS). So only an allow-list of types that a
// browser never executes is served as declared; everything else is served as
// application/octet-stream, as a download (Content-Disposition: attachment).
// Every answer also carries nosniff (no guessing a type we did not send) and
// a sandbox CSP (nothing runs even if a browser did render it).

/** A parsed Content-Type: lowercase type/subtype and parameters (names lowercase, values as sent). */
export interface MediaType { essence: string; params: Record<string, string> }

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Parses a Content-Type header value (RFC 9110 §8.3.1): `type/subtype` then
 * `; name=value` parameters (a value may be a quoted string). Case and
 * whitespace around the parts do not matter. null when it is not one.
 */
export function parseMediaType(header: string | undefined): MediaType | null {
  if (header === undefined) return null;
  const semi = header.indexOf(';');
  const essence = (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase();
  const slash = essence.indexOf('/');
  if (slash <= 0 || !TOKEN.test(essence.slice(0, slash)) || !TOKEN.test(essence.slice(slash + 1))) return null;
  const params: Record<string, string> = {};
  let rest = semi < 0 ? '' : header.slice(semi + 1);
  while (rest.trim() !== '') {
    const m = /^\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;"]*?)\s*(?:;|$)/.exec(rest);
    if (!m || !TOKEN.test(m[1]!)) return null;
    const raw = m[2]!;
    params[m[1]!.toLowerCase()] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    rest = rest.slice(m[0].length);
  }
  return { essence, params };
}

/**
 * Served as declared: images, glTF models, audio and video that browsers
 * show or play but never run. Not here on purpose: text/html, image/svg+xml
 * (SVG runs scripts), text/xml and every +xml type (XHTML), application/javascript,
 * application/pdf (plugins), text/css, and anything unknown.
 */
export const SAFE_TYPES: ReadonlySet<string> = new Set([
  'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp',
  'model/gltf-binary', 'model/gltf+json',
  'audio/mpeg', 'audio/ogg', 'audio/wav', 'audio/webm', 'audio/flac',
  'video/mp4', 'video/webm', 'video/ogg',
  'application/octet-stream',
]);

/** Charsets a text/plain upload may name: anything else (UTF-7…) could make a browser read other characters than we checked. */
const SAFE_CHARSETS: ReadonlySet<string> = new Set(['utf-8', 'us-ascii']);

/** What an upload's declared type is stored as: `type/subtype` with its charset if any, or octet-stream when unreadable. */
export function normalizeContentType(header: string | undefined): string {
  const t = parseMediaType(header);
  if (!t) return 'application/octet-stream';
  return t.params.charset !== undefined ? `${t.essence}; charset=${t.params.charset.toLowerCase()}` : t.essence;
}

/** Headers on every file Asset serves (content and thumbnails). */
export const FILE_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; sandbox",
};

/**
 * The headers to serve a file with, given its stored type and the name to
 * offer when it must be downloaded. Stored metadata from before this rule
 * (raw headers) goes through the same parser.
 */
export function delivery(contentType: string, filename: string): Record<string, string> {
  const t = parseMediaType(contentType);
  if (t && t.essence === 'text/plain' && SAFE_CHARSETS.has((t.params.charset ?? 'utf-8').toLowerCase())) {
    return { ...FILE_HEADERS, 'content-type': 'text/plain; charset=utf-8' };
  }
  if (t && SAFE_TYPES.has(t.essence)) return { ...FILE_HEADERS, 'content-type': t.essence };
  return { ...FILE_HEADERS, 'content-type': 'application/octet-stream', 'content-disposition': attachment(filename) };
}

/**
 * `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266 §4.3, RFC 8187):
 * an ASCII fallback with anything risky replaced by "_" (quotes, backslashes,
 * path separators, controls, non-ASCII), and the exact name percent-encoded
 * for the browsers that read filename* (all current ones).
 */
export function attachment(filename: string): string {
  const base = filename.replace(/^.*[/\\]/, '') || 'download';
  const ascii = base.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  const exact = encodeURIComponent(base).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}
