// The CLI's side of the daemon API: HTTP over the unix socket in CARTE_HOME.
import http from 'node:http';
import { CarteError } from '../errors.js';
import { daemonPaths } from './paths.js';

export interface DaemonClient {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
}

function request<T>(socket: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath: socket, method, path, timeout: timeoutMs, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        const parsed = text ? (JSON.parse(text) as T & { error?: string }) : ({} as T & { error?: string });
        if ((res.statusCode ?? 500) >= 400) reject(new CarteError('io', `daemon: ${parsed.error ?? `HTTP ${res.statusCode}`}`));
        else resolve(parsed);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A client if a daemon answers on this CARTE_HOME's socket, else null. */
export async function connectDaemon(home: string): Promise<DaemonClient | null> {
  const { socket } = daemonPaths(home);
  try {
    await request(socket, 'GET', '/v1/health', undefined, 1000);
  } catch {
    return null;
  }
  return {
    get: (path) => request(socket, 'GET', path, undefined, 30_000),
    post: (path, body) => request(socket, 'POST', path, body, 30_000),
  };
}
