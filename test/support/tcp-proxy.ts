/**
 * A TCP relay in front of the test apiserver that can cut the network the way
 * a partition does: while cut, nothing is forwarded either way and new
 * connections are accepted but never reach the apiserver, so a client sees
 * open connections that have gone silent (no reset, no close), as behind a
 * dead link. Healing closes what was blackholed (a partition long enough
 * breaks its connections) and forwards again. TLS passes through untouched:
 * the clients keep their own credentials and verify the apiserver itself.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server: Server | undefined;
  private cutNow = false;
  private readonly pairs = new Set<{ client: Socket; upstream?: Socket }>();
  private readonly target: URL;
  port = 0;

  constructor(targetUrl: string) {
    this.target = new URL(targetUrl);
  }

  async start(): Promise<void> {
    this.server = createServer((client) => this.relay(client));
    this.server.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => this.server!.once('listening', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Stops forwarding: every connection, open or new, goes silent. */
  cut(): void {
    this.cutNow = true;
  }

  /** Closes the silent connections and forwards again. */
  heal(): void {
    this.cutNow = false;
    for (const p of [...this.pairs]) this.close(p);
  }

  async stop(): Promise<void> {
    for (const p of [...this.pairs]) this.close(p);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** A copy of `kubeconfig` whose server is this relay (same CA, same credentials), written to `file`. */
  kubeconfigFor(kubeconfig: string, file: string): string {
    const text = readFileSync(kubeconfig, 'utf8');
    const replaced = text.replaceAll(this.target.origin, `https://127.0.0.1:${this.port}`);
    if (replaced === text) throw new Error(`${kubeconfig} does not name ${this.target.origin}`);
    writeFileSync(file, replaced, { mode: 0o600 });
    return file;
  }

  private relay(client: Socket): void {
    const pair: { client: Socket; upstream?: Socket } = { client };
    this.pairs.add(pair);
    client.on('error', () => this.close(pair));
    client.on('close', () => this.close(pair));
    if (this.cutNow) return; // accepted, never forwarded: its bytes go nowhere
    const upstream = connect(Number(this.target.port), this.target.hostname);
    pair.upstream = upstream;
    upstream.on('error', () => this.close(pair));
    upstream.on('close', () => this.close(pair));
    client.on('data', (d) => { if (!this.cutNow) upstream.write(d); });
    upstream.on('data', (d) => { if (!this.cutNow) client.write(d); });
  }

  private close(p: { client: Socket; upstream?: Socket }): void {
    if (!this.pairs.delete(p)) return;
    p.client.destroy();
    p.upstream?.destroy();
  }
}
