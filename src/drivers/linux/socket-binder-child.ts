// The socket binder: a small program the Linux driver starts inside the
// gateway's network namespace (`nsenter --net=… -- node socket-binder-child.js`,
// with Node's IPC channel as fd 3). It binds the listening sockets of
// service addresses there, on request, and passes each to the daemon (the
// kernel passes the descriptor: SCM_RIGHTS), which accepts on it from the
// host's namespace. A socket stays in the namespace it was made in whoever
// holds it, so the daemon itself never has to enter the namespace.
//
// Protocol (the daemon's side is socket-binder.ts):
//   → { type: 'bind', id, kind: 'tcp'|'udp', address, port }
//   ← { type: 'bound', id } + the net.Server / dgram.Socket, or { type: 'error', id, code, message }
//   → { type: 'release', id }      the daemon holds it now: close this copy
//   ← { type: 'stray', id } + net.Socket            a connection accepted before the release
//   ← { type: 'stray-datagram', id, data, address, port }   a datagram read before it
//   ← { type: 'ready', netns }     once, at start: the inode of the namespace it runs in
// It exits when the daemon goes (the channel closes).
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';

type Request =
  | { type: 'bind'; id: number; kind: 'tcp' | 'udp'; address: string; port: number }
  | { type: 'release'; id: number };

if (!process.send) {
  process.stderr.write('socket-binder-child: must be started by carte with an IPC channel\n');
  process.exit(2);
}
const channel = process.send.bind(process);
/** Sends to the daemon; if it is gone, so is the reason to run. */
function send(message: object, handle?: net.Server | net.Socket | dgram.Socket): void {
  if (!process.connected) process.exit(0);
  channel(message, handle, {}, (e: Error | null) => {
    if (e) process.exit(0);
  });
}
const held = new Map<number, net.Server | dgram.Socket>();

function fail(id: number, e: NodeJS.ErrnoException): void {
  held.delete(id);
  send({ type: 'error', id, code: e.code ?? 'EUNKNOWN', message: e.message });
}

function bindTcp(id: number, address: string, port: number): void {
  // Until the daemon holds its copy, both processes poll the socket: a connection this
  // copy accepts meanwhile is passed on (paused: not a byte is read here), never dropped.
  const server = net.createServer({ pauseOnConnect: true }, (s) => send({ type: 'stray', id }, s));
  held.set(id, server);
  server.once('error', (e) => fail(id, e));
  server.listen({ host: address, port, exclusive: true }, () => send({ type: 'bound', id }, server));
}

function bindUdp(id: number, address: string, port: number): void {
  const socket = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4' });
  held.set(id, socket);
  socket.once('error', (e) => fail(id, e));
  // Read by this copy before the release (a dgram socket reads from bind on): passed on too.
  socket.on('message', (data, r) => send({ type: 'stray-datagram', id, data: data.toString('base64'), address: r.address, port: r.port }));
  socket.bind({ address, port, exclusive: true }, () => send({ type: 'bound', id }, socket));
}

process.on('message', (m: Request) => {
  switch (m.type) {
    case 'bind':
      if (m.kind === 'tcp') bindTcp(m.id, m.address, m.port);
      else bindUdp(m.id, m.address, m.port);
      return;
    case 'release': {
      const s = held.get(m.id);
      held.delete(m.id);
      s?.close();
      return;
    }
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', netns: fs.statSync('/proc/self/ns/net').ino });
