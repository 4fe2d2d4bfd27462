// UDP position tickets end with the stay in the room. The signed ticket
// names the player, the room and a random session id (sid) of the TCP
// session that joined; the ticket is only good while Redis says that
// session is in that room:
//   metaverse:game:ticket:SID   the room (TTL TICKET_TTL_MS, refreshed with presence)
// Leave, a room change, a disconnect and a replica's shutdown delete or
// change it; a SIGKILLed replica's keys run out with their TTL. Any replica
// checks a datagram's ticket against it, through a short cache so that a
// stream of datagrams costs at most one Redis read per ticket per cacheMs.

export const ticketKey = (sid: string) => `metaverse:game:ticket:${sid}`;

/** How long a ticket key lives without a refresh (presence refreshes it every 5 s). */
export const TICKET_TTL_MS = 30_000;

interface Entry { room: string | null; at: number }

/** Which room a session id is in now, as last read from Redis (at most `ttlMs` ago), or as this replica set it. */
export class TicketCache {
  private entries = new Map<string, Entry>();
  private inflight = new Map<string, Promise<string | null>>();

  constructor(private readonly lookup: (sid: string) => Promise<string | null>, private readonly ttlMs: number, private readonly now: () => number = Date.now) {}

  /** The session's current room, or null when its ticket was revoked (or never was). One lookup at a time per sid. */
  room(sid: string): Promise<string | null> {
    const e = this.entries.get(sid);
    if (e && this.now() - e.at < this.ttlMs) return Promise.resolve(e.room);
    const running = this.inflight.get(sid);
    if (running) return running;
    const p: Promise<string | null> = this.lookup(sid).then(
      (room) => {
        // A grant or revoke on this replica while the read was under way wins over it.
        if (this.inflight.get(sid) === p) this.entries.set(sid, { room, at: this.now() });
        return room;
      },
    ).finally(() => {
      if (this.inflight.get(sid) === p) this.inflight.delete(sid);
    });
    this.inflight.set(sid, p);
    return p;
  }

  /** This replica issued a ticket for `room`: good here at once. */
  grant(sid: string, room: string): void {
    this.inflight.delete(sid);
    this.entries.set(sid, { room, at: this.now() });
  }

  /** This replica revoked the ticket: refused here at once (elsewhere within ttlMs). */
  revoke(sid: string): void {
    this.inflight.delete(sid);
    this.entries.set(sid, { room: null, at: this.now() });
  }

  /** Drops entries too old to be used again. */
  prune(): void {
    const cutoff = this.now() - this.ttlMs;
    for (const [sid, e] of this.entries) if (e.at <= cutoff) this.entries.delete(sid);
  }

  get size(): number {
    return this.entries.size;
  }
}
