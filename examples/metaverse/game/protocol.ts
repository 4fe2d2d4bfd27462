// The Game protocol: one JSON object per line over TCP (easy to read with
// `nc`), plus one JSON object per UDP datagram for positions.
//
// client → server                           server → client
//   {"t":"hello","token":T}                   {"t":"welcome","player","instance"}
//   {"t":"join","room":ID}                    {"t":"joined","room","players":[{name,x,y,z}],"ticket"}
//   {"t":"move","x","y","z","ts"?}            {"t":"enter"|"move","player","x","y","z","ts"?}
//   {"t":"chat","text","ts"?}                 {"t":"chat","from","text","ts"?}
//   {"t":"leave"}                             {"t":"left","player"}
//   {"t":"ping","id"?}                        {"t":"pong","id"}
//                                             {"t":"error","code","message"}  {"t":"bye","reason"}
// UDP: {"ticket":T,"x","y","z","ts"?} where T is the ticket from "joined".

export const MAX_LINE = 16 * 1024;
export const WORLD_LIMIT = 100_000;
export const MAX_CHAT = 500;

export class ProtocolError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface Position { x: number; y: number; z: number }

export type ClientMessage =
  | { t: 'hello'; token: string }
  | { t: 'join'; room: string }
  | ({ t: 'move'; ts?: number } & Position)
  | { t: 'chat'; text: string; ts?: number }
  | { t: 'leave' }
  | { t: 'ping'; id?: unknown };

/** Splits a byte stream into lines; a line longer than MAX_LINE is an error. */
export class LineReader {
  private partial = '';

  push(chunk: string): string[] {
    const text = this.partial + chunk;
    const lines = text.split('\n');
    this.partial = lines.pop()!;
    if (this.partial.length > MAX_LINE) throw new ProtocolError('line_too_long', `a message may have at most ${MAX_LINE} bytes`);
    return lines.map((l) => l.replace(/\r$/, '')).filter((l) => l.length > 0);
  }
}

function object(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ProtocolError('bad_json', 'each message must be one JSON object per line');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError('bad_json', 'each message must be a JSON object');
  return v as Record<string, unknown>;
}

export function parsePosition(m: Record<string, unknown>): Position & { ts?: number } {
  const coords = [m.x, m.y, m.z];
  if (!coords.every((c) => typeof c === 'number' && Number.isFinite(c) && Math.abs(c) <= WORLD_LIMIT)) {
    throw new ProtocolError('bad_move', `x, y and z must be numbers within ±${WORLD_LIMIT}`);
  }
  const p: Position & { ts?: number } = { x: m.x as number, y: m.y as number, z: m.z as number };
  if (typeof m.ts === 'number' && Number.isFinite(m.ts)) p.ts = m.ts;
  return p;
}

export function parseClientMessage(line: string): ClientMessage {
  const m = object(line);
  switch (m.t) {
    case 'hello':
      if (typeof m.token !== 'string') throw new ProtocolError('bad_hello', 'hello needs "token" (from Login)');
      return { t: 'hello', token: m.token };
    case 'join':
      if (typeof m.room !== 'string' || !/^[0-9]{1,12}$/.test(m.room)) throw new ProtocolError('bad_join', 'join needs "room": a room id from Map, as a string');
      return { t: 'join', room: m.room };
    case 'move':
      return { t: 'move', ...parsePosition(m) };
    case 'chat': {
      if (typeof m.text !== 'string' || m.text.length < 1 || m.text.length > MAX_CHAT) throw new ProtocolError('bad_chat', `chat needs "text" of 1 to ${MAX_CHAT} characters`);
      return typeof m.ts === 'number' ? { t: 'chat', text: m.text, ts: m.ts } : { t: 'chat', text: m.text };
    }
    case 'leave':
      return { t: 'leave' };
    case 'ping':
      return { t: 'ping', id: m.id };
    default:
      throw new ProtocolError('unknown_type', `unknown message type ${JSON.stringify(m.t)} (hello, join, move, chat, leave, ping)`);
  }
}

/** A UDP position datagram: the ticket and the position. */
export function parseDatagram(buf: Buffer): { ticket: string } & Position & { ts?: number } {
  const m = object(buf.toString('utf8'));
  if (typeof m.ticket !== 'string') throw new ProtocolError('bad_ticket', 'a position datagram needs "ticket" (from "joined")');
  return { ticket: m.ticket, ...parsePosition(m) };
}

/** What one replica publishes to a room's channel; every replica relays it to its own players there. */
export type RoomEvent =
  | ({ t: 'enter' | 'move'; player: string; ts?: number } & Position)
  | { t: 'chat'; from: string; text: string; ts?: number }
  | { t: 'left'; player: string };

/** Whether a player should receive a room event: not their own enter/move/left; chat goes to everyone. */
export function shouldDeliver(event: RoomEvent, player: string): boolean {
  return event.t === 'chat' || event.player !== player;
}
