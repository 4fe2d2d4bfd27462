import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { ExecOptions } from '../../../src/drivers/driver.js';
import { makeProber } from '../../../src/reconciler/probes.js';

/** A loopback server for one test; every socket it accepted is tracked, to see that probes close theirs. */
async function serve(onSocket: (s: net.Socket) => void): Promise<{ port: number; open: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.resume(); // read, so a client's close is seen
    onSocket(s);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return {
    port: (server.address() as net.AddressInfo).port,
    open: () => sockets.size,
    close: () => new Promise<void>((res) => {
      for (const s of sockets) s.destroy();
      server.close(() => res());
    }),
  };
}

const noExec = { exec: async () => 0 };
const until = async (check: () => boolean, ms = 2000) => {
  for (let t = 0; t < ms && !check(); t += 10) await new Promise((r) => setTimeout(r, 10));
  return check();
};

describe('probes: every check ends by its timeout and leaves nothing open', () => {
  const probe = makeProber(noExec);

  it('http: a server that accepts and never answers is a timeout, and the socket is closed', async () => {
    const srv = await serve(() => undefined);
    try {
      const result = await probe({ kind: 'http', path: '/health', port: srv.port }, { name: 'x-1', ip: '127.0.0.1' }, 200);
      assert.equal(result, 'timed out after 200 ms');
      assert.ok(await until(() => srv.open() === 0), 'the probe closed its connection');
    } finally {
      await srv.close();
    }
  });

  it('http: a server that trickles its answer byte by byte cannot stretch the timeout', async () => {
    const srv = await serve((s) => {
      // A status line, then a header that never ends, one byte at a time.
      const text = 'HTTP/1.1 200 OK\r\nx-slow: ';
      let i = 0;
      const t = setInterval(() => s.write(i < text.length ? text[i++]! : 'a'), 10);
      s.on('close', () => clearInterval(t));
    });
    try {
      const started = Date.now();
      const result = await probe({ kind: 'http', path: '/', port: srv.port }, { name: 'x-1', ip: '127.0.0.1' }, 200);
      assert.equal(result, 'timed out after 200 ms');
      assert.ok(Date.now() - started < 2000);
      assert.ok(await until(() => srv.open() === 0));
    } finally {
      await srv.close();
    }
  });

  it('http: an endless body is never read; the status decides and the socket is closed', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200);
      const t = setInterval(() => res.write('x'.repeat(65536)), 5);
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const port = (server.address() as net.AddressInfo).port;
    let open = 0;
    server.on('connection', (s) => {
      open++;
      s.on('close', () => open--);
    });
    try {
      assert.equal(await probe({ kind: 'http', path: '/', port }, { name: 'x-1', ip: '127.0.0.1' }, 1000), null);
      assert.ok(await until(() => open === 0), 'no socket left open');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    }
  });

  it('http: a 500 fails with its status', async () => {
    const server = http.createServer((_req, res) => res.writeHead(500).end());
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    try {
      assert.equal(await probe({ kind: 'http', path: '/', port: (server.address() as net.AddressInfo).port }, { name: 'x-1', ip: '127.0.0.1' }, 1000), 'HTTP 500');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    }
  });

  it('tcp: connects and closes at once; a refused port fails with the reason', async () => {
    const srv = await serve(() => undefined);
    try {
      assert.equal(await probe({ kind: 'tcp', port: srv.port }, { name: 'x-1', ip: '127.0.0.1' }, 1000), null);
      assert.ok(await until(() => srv.open() === 0));
    } finally {
      await srv.close();
    }
    assert.match((await probe({ kind: 'tcp', port: srv.port }, { name: 'x-1', ip: '127.0.0.1' }, 1000))!, /ECONNREFUSED/);
  });

  it('exec: on timeout the driver is told to abort (it kills the command), and the probe waits until it has', async () => {
    let seen: ExecOptions | undefined;
    let killed = false;
    const driver = {
      exec: (_name: string, _cmd: string[], opts: ExecOptions = {}) => {
        seen = opts;
        return new Promise<number>((res) => opts.signal?.addEventListener('abort', () => setTimeout(() => {
          killed = true;
          res(137);
        }, 50)));
      },
    };
    const result = await makeProber(driver)({ kind: 'exec', command: ['sleep', '1000'] }, { name: 'x-1', ip: null }, 100);
    assert.equal(result, 'timed out after 100 ms');
    assert.equal(killed, true, 'resolved only once the command was gone');
    assert.equal(seen?.stdout, undefined, 'no output stream: the driver discards it');
  });

  it('exec: an outer abort (daemon shutdown) ends it too, and exit codes are reported', async () => {
    const controller = new AbortController();
    const driver = { exec: (_n: string, cmd: string[], opts: ExecOptions = {}) => new Promise<number>((res) => {
      if (cmd[0] === 'false') res(1);
      opts.signal?.addEventListener('abort', () => res(137));
    }) };
    const p = makeProber(driver);
    assert.equal(await p({ kind: 'exec', command: ['false'] }, { name: 'x-1', ip: null }, 1000), 'exited with code 1');
    const pending = p({ kind: 'exec', command: ['sleep', '1000'] }, { name: 'x-1', ip: null }, 60_000, controller.signal);
    controller.abort();
    assert.equal(await pending, 'aborted');
  });
});
