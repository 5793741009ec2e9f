/** A TCP proxy on loopback that a test can cut: every connection through it is dropped at once (both sides). */
import { createConnection, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export async function tcpProxy(targetPort: number): Promise<{ port: number; connections: number; dropAll(): void; cut(on: boolean): void; close(): Promise<void> }> {
  const pairs = new Set<[Socket, Socket]>();
  let connections = 0;
  let cut = false;
  const server = createServer((client) => {
    // Cut off: a connection gets nowhere (as behind a partition).
    if (cut) return void client.destroy();
    connections++;
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream).pipe(client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const api = {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    dropAll() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    /** Drop every connection and refuse new ones until cut(false). */
    cut(on: boolean) {
      cut = on;
      if (on) api.dropAll();
    },
    close: () => new Promise<void>((r) => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      server.close(() => r());
    }),
  };
  return api;
}
