// The players this replica serves, by room: decides when to subscribe to and
// unsubscribe from a room's channel (first player in, last player out).

export class LocalRooms<S> {
  private rooms = new Map<string, Set<S>>();

  /** Adds; true when the room had no local player before (subscribe now). */
  add(room: string, session: S): boolean {
    let set = this.rooms.get(room);
    const first = !set;
    if (!set) this.rooms.set(room, (set = new Set()));
    set.add(session);
    return first;
  }

  /** Removes; true when it was the room's last local player (unsubscribe now). */
  remove(room: string, session: S): boolean {
    const set = this.rooms.get(room);
    if (!set || !set.delete(session)) return false;
    if (set.size) return false;
    this.rooms.delete(room);
    return true;
  }

  members(room: string): ReadonlySet<S> {
    return this.rooms.get(room) ?? new Set();
  }

  entries(): Array<[string, ReadonlySet<S>]> {
    return [...this.rooms.entries()];
  }
}
