// Where the gateway's listening sockets come from. Published ports are bound
// here, in the daemon's own (the host's) network namespace; service
// addresses are not the host's (they live in the driver's gateway
// namespace), so their sockets come from the driver's serviceSockets. Both
// give the same kind of socket, so the proxies do not know which they hold.
import dgram from 'node:dgram';
import net from 'node:net';
import type { ServiceSockets } from '../drivers/driver.js';

/** What a proxy wants of accepted connections: paused until an upstream is found, half-close kept, Nagle off. */
export const PROXY_SERVER_OPTIONS: net.ServerOpts = { allowHalfOpen: true, pauseOnConnect: true, noDelay: true };

export type Sockets = Pick<ServiceSockets, 'tcp' | 'udp'>;

/** Binds on the host; rejects with the bind error (EADDRINUSE, EACCES, ...). */
export function hostSockets(): Sockets {
  return {
    tcp(address, port, onConnection) {
      const server = net.createServer(PROXY_SERVER_OPTIONS, onConnection);
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: address, port, exclusive: true }, () => {
          server.off('error', reject);
          resolve(server);
        });
      });
    },
    udp(address, port, onMessage) {
      const socket = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4' });
      return new Promise((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address, port, exclusive: true }, () => {
          socket.off('error', reject);
          socket.on('message', onMessage);
          resolve(socket);
        });
      });
    },
  };
}
