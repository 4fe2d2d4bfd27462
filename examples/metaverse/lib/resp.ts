// RESP2, the Redis wire protocol: commands are arrays of bulk strings;
// replies are parsed incrementally from whatever bytes have arrived.

export type Reply = string | number | null | Reply[] | RedisReplyError;

/** An error reply (-ERR ...): a value, not a thrown exception, inside arrays. */
export class RedisReplyError extends Error {}

export function encodeCommand(args: ReadonlyArray<string | number | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

const INCOMPLETE = Symbol('incomplete');

/** Feeds bytes, yields complete replies in order. */
export class ReplyParser {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Reply[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Reply[] = [];
    let offset = 0;
    for (;;) {
      const r = parseAt(this.buf, offset);
      if (r === INCOMPLETE) break;
      out.push(r.value);
      offset = r.next;
    }
    this.buf = this.buf.subarray(offset);
    return out;
  }
}

function parseAt(buf: Buffer, at: number): { value: Reply; next: number } | typeof INCOMPLETE {
  if (at >= buf.length) return INCOMPLETE;
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return INCOMPLETE;
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  switch (String.fromCharCode(buf[at]!)) {
    case '+':
      return { value: line, next };
    case '-':
      return { value: new RedisReplyError(line), next };
    case ':':
      return { value: Number(line), next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next };
      if (buf.length < next + len + 2) return INCOMPLETE;
      return { value: buf.toString('utf8', next, next + len), next: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, next };
      const items: Reply[] = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parseAt(buf, p);
        if (r === INCOMPLETE) return INCOMPLETE;
        items.push(r.value);
        p = r.next;
      }
      return { value: items, next: p };
    }
    default:
      throw new Error(`redis protocol error: unexpected byte ${JSON.stringify(String.fromCharCode(buf[at]!))}`);
  }
}
