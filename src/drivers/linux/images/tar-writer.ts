// A small deterministic tar writer (ustar headers, PAX records for long
// names, big ids and sizes): what carte exports must give the same bytes,
// hence the same digests, for the same image. node-tar's packer reads
// entries from the disk with their mtimes and cannot write overlayfs marks
// as `.wh.` entries, so export writes its own stream.
import fs from 'node:fs';

export type TarEntry =
  | { type: 'file'; path: string; mode: number; uid: number; gid: number; size: number; source: string | Buffer }
  | { type: 'dir'; path: string; mode: number; uid: number; gid: number }
  | { type: 'symlink'; path: string; mode: number; uid: number; gid: number; target: string };

const BLOCK = 512;
const TYPEFLAG = { file: '0', symlink: '2', dir: '5' } as const;

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

/** One PAX record: "LEN key=value\n", where LEN counts its own digits too. */
export function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.byteLength(` ${key}=${value}\n`);
  let len = body + 1;
  while (body + String(len).length !== len) len = body + String(len).length;
  return Buffer.from(`${len} ${key}=${value}\n`);
}

function header(name: string, typeflag: string, fields: { mode: number; uid: number; gid: number; size: number; linkname?: string }): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(fields.mode & 0o7777, 8), 100, 'ascii');
  h.write(octal(fields.uid, 8), 108, 'ascii');
  h.write(octal(fields.gid, 8), 116, 'ascii');
  h.write(octal(fields.size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii'); // mtime: 0, so the same tree gives the same bytes
  h.write('        ', 148, 'ascii');
  h.write(typeflag, 156, 'ascii');
  if (fields.linkname) h.write(fields.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The header blocks of one entry: a PAX header first when a field does not fit ustar. */
export function entryHeader(e: TarEntry): Buffer {
  const name = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
  const size = e.type === 'file' ? e.size : 0;
  const linkname = e.type === 'symlink' ? e.target : undefined;
  const pax: Buffer[] = [];
  const ascii = (s: string) => /^[\x20-\x7e]*$/.test(s);
  if (Buffer.byteLength(name) > 99 || !ascii(name)) pax.push(paxRecord('path', name));
  if (linkname !== undefined && (Buffer.byteLength(linkname) > 99 || !ascii(linkname))) pax.push(paxRecord('linkpath', linkname));
  if (e.uid > 0o7777777) pax.push(paxRecord('uid', String(e.uid)));
  if (e.gid > 0o7777777) pax.push(paxRecord('gid', String(e.gid)));
  if (size > 0o77777777777) pax.push(paxRecord('size', String(size)));
  const main = header(pax.length ? name.slice(0, 99).replace(/[^\x20-\x7e]/g, '_') : name, TYPEFLAG[e.type], {
    mode: e.mode, uid: Math.min(e.uid, 0o7777777), gid: Math.min(e.gid, 0o7777777), size: Math.min(size, 0o77777777777),
    linkname: linkname === undefined ? undefined : pax.length ? linkname.slice(0, 99).replace(/[^\x20-\x7e]/g, '_') : linkname,
  });
  if (!pax.length) return main;
  const body = Buffer.concat(pax);
  return Buffer.concat([header('PaxHeader', 'x', { mode: 0o644, uid: 0, gid: 0, size: body.length }), body, padding(body.length), main]);
}

/** The tar stream of `entries`, in their order, with the two zero blocks at the end. */
export async function* tarStream(entries: AsyncIterable<TarEntry> | Iterable<TarEntry>): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    yield entryHeader(e);
    if (e.type !== 'file') continue;
    let written = 0;
    if (Buffer.isBuffer(e.source)) {
      yield e.source;
      written = e.source.length;
    } else {
      for await (const chunk of fs.createReadStream(e.source)) {
        yield chunk as Buffer;
        written += (chunk as Buffer).length;
      }
    }
    if (written !== e.size) throw new Error(`${e.path} changed size while it was being written (${e.size} → ${written})`);
    yield padding(e.size);
  }
  yield Buffer.alloc(BLOCK * 2);
}
