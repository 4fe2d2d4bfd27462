// A real HTTP server on 127.0.0.1 (port 0) that records what webhooks POST,
// answering as each test says: a status, or never (the request is held until
// release() or close()).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Answer = number | 'hang';

export interface Receiver {
  url: string;
  received: Received[];
  /** Requests held open by 'hang' answers. */
  held: http.ServerResponse[];
  /** How the next requests are answered (the last entry repeats). */
  answers: Answer[];
  release(status?: number): void;
  close(): Promise<void>;
}

export async function startReceiver(answers: Answer[] = [200], urlPath = '/hook'): Promise<Receiver> {
  const r: Receiver = {
    url: '', received: [], held: [], answers,
    release(status = 200) {
      for (const res of r.held.splice(0)) res.writeHead(status).end();
    },
    async close() {
      r.release(503);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      r.received.push({ method: req.method!, path: req.url!, headers: req.headers, body });
      const answer = r.answers.length > 1 ? r.answers.shift()! : r.answers[0]!;
      if (answer === 'hang') r.held.push(res);
      else res.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${urlPath}`;
  return r;
}
