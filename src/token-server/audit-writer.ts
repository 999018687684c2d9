/**
 * The audit log's stream: one JSON line per record, to stdout (`-`) or to a
 * file rotated by size, like kube-apiserver's --audit-log-path,
 * --audit-log-maxsize and --audit-log-maxbackup.
 *
 * Invariants:
 * - `write` never blocks the event loop: it appends to an in-memory queue,
 *   and one drain loop at a time writes the queue with asynchronous
 *   `fs.write` calls (libuv's thread pool), so a slow disk or a full pipe
 *   stalls the drain, never a request.
 * - The queue is bounded (`maxQueuedBytes`). A record that does not fit is
 *   dropped and counted (`onDrop`, a metric), and a warning is logged at
 *   most once per DROP_WARNING_INTERVAL_MS: overload costs records, visibly,
 *   never memory without bound. A write that fails (disk full) counts its
 *   records as dropped the same way.
 * - Every record is one `write(2)` of whole lines. On stdout, which the
 *   application log (pino, synchronous) shares, a write is at most PIPE_BUF
 *   bytes, so a pipe never interleaves an application line inside a record.
 * - A file is opened append-only, mode 0600. When the next write would pass
 *   `maxSizeBytes`, the file is renamed to `<name>-<UTC time><ext>` (the
 *   backup names sort by age) and a new one is opened; backups beyond
 *   `maxBackups` are deleted, oldest first (0 keeps them all, as
 *   kube-apiserver does).
 * - `close` drains the queue before it resolves (bounded by its timeout).
 */
import { close, open, openSync, write, type PathLike } from 'node:fs';
import { readdir, rename, stat, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { basename, dirname, extname, join } from 'node:path';
import type { Logger } from '../shared/log.ts';

/** Linux's PIPE_BUF: a pipe write of at most this many bytes is atomic. */
export const PIPE_BUF = 4096;
/** A file write batches whole lines up to this size. */
const FILE_CHUNK = 64 * 1024;
export const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024;
const DROP_WARNING_INTERVAL_MS = 10_000;

export interface AuditWriterOptions {
  /** `-` for stdout, else a file path. */
  path: string;
  /** Rotate a file before it passes this size; 0: never rotate. */
  maxSizeBytes: number;
  /** Rotated files kept; 0: all. */
  maxBackups: number;
  /** Records queued but not yet written, in bytes, before new ones are dropped. */
  maxQueuedBytes?: number;
  log: Logger;
  /** Records written (`'written'`) or dropped (`'dropped'`), for the metrics. */
  observe?(result: 'written' | 'dropped', count: number): void;
}

type Fd = number;

function writeAll(fd: Fd, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (offset: number) => {
      write(fd, buf, offset, buf.length - offset, null, (err, n) => {
        if (err) {
          // stdout may be a non-blocking pipe: wait for room instead of failing.
          if (err.code === 'EAGAIN') setTimeout(() => step(offset), 5).unref();
          else reject(err);
          return;
        }
        if (offset + n < buf.length) step(offset + n);
        else resolve();
      });
    };
    step(0);
  });
}

/** `2026-12-07T05-00-00.000`: lumberjack's (kube-apiserver's) backup time stamp, in UTC. */
function stamp(d: Date): string {
  return d.toISOString().replace(/:/g, '-').replace(/Z$/, '');
}

const BACKUP_STAMP = /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}$/;
const openFd = promisify(open);
const closeFd = promisify(close);

export class AuditWriter {
  private readonly opts: AuditWriterOptions;
  private readonly maxQueued: number;
  private readonly stdout: boolean;
  private fd: Fd;
  private size = 0;
  private queue: string[] = [];
  private queuedBytes = 0;
  private draining: Promise<void> | undefined;
  private closed = false;
  private droppedSinceWarning = 0;
  private lastWarningMs = 0;
  private lastBackupMs = 0;

  /** Opens the file (synchronously, at startup, so a bad path is a clear error before serving). */
  constructor(opts: AuditWriterOptions) {
    this.opts = opts;
    this.maxQueued = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.stdout = opts.path === '-';
    if (this.stdout) {
      this.fd = 1;
    } else {
      try {
        this.fd = openSync(opts.path, 'a', 0o600);
      } catch (err) {
        throw new Error(`cannot open the audit log ${opts.path}: ${(err as NodeJS.ErrnoException).code ?? 'unwritable'}`, { cause: err });
      }
    }
  }

  /** The size of the file being written when the writer started. */
  async init(): Promise<void> {
    if (!this.stdout) this.size = (await stat(this.opts.path)).size;
  }

  /** Queues one record (a JSON object, without its newline); false when it was dropped. */
  write(json: string): boolean {
    const line = `${json}\n`;
    const bytes = Buffer.byteLength(line);
    if (this.closed || this.queuedBytes + bytes > this.maxQueued) {
      this.dropped(1);
      return false;
    }
    this.queue.push(line);
    this.queuedBytes += bytes;
    this.draining ??= this.drain().finally(() => { this.draining = undefined; });
    return true;
  }

  /** Resolves once everything queued so far is written (or dropped). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Writes what is queued (up to `timeoutMs`), then closes the file; later writes are dropped. */
  async close(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); })]);
    clearTimeout(timer);
    this.closed = true;
    if (this.queue.length) this.dropped(this.queue.length);
    this.queue = [];
    if (!this.stdout) await closeFd(this.fd).catch(() => undefined);
  }

  private dropped(count: number): void {
    this.opts.observe?.('dropped', count);
    this.droppedSinceWarning += count;
    const now = Date.now();
    if (now - this.lastWarningMs >= DROP_WARNING_INTERVAL_MS) {
      this.opts.log.warn({ dropped: this.droppedSinceWarning, path: this.opts.path },
        'audit records dropped: the audit log cannot keep up (see apikey_operator_audit_records_total{result="dropped"})');
      this.droppedSinceWarning = 0;
      this.lastWarningMs = now;
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const lines = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      const limit = this.stdout ? PIPE_BUF : FILE_CHUNK;
      let chunk: string[] = [];
      let chunkBytes = 0;
      for (const line of lines) {
        const bytes = Buffer.byteLength(line);
        const rotateFirst = !this.stdout && this.opts.maxSizeBytes > 0 && this.size + chunkBytes + bytes > this.opts.maxSizeBytes
          && this.size + chunkBytes > 0;
        if (chunk.length && (chunkBytes + bytes > limit || rotateFirst)) {
          await this.writeChunk(chunk, chunkBytes);
          chunk = [];
          chunkBytes = 0;
        }
        if (rotateFirst) await this.rotate();
        chunk.push(line);
        chunkBytes += bytes;
      }
      if (chunk.length) await this.writeChunk(chunk, chunkBytes);
    }
  }

  private async writeChunk(lines: string[], bytes: number): Promise<void> {
    try {
      await writeAll(this.fd, Buffer.from(lines.join('')));
      this.size += bytes;
      this.opts.observe?.('written', lines.length);
    } catch (err) {
      this.opts.log.error({ err, path: this.opts.path }, 'cannot write the audit log');
      this.dropped(lines.length);
    }
  }

  /** Renames the full file to a time-stamped backup, opens a new one, and deletes backups beyond maxBackups. */
  private async rotate(): Promise<void> {
    const path = this.opts.path;
    const ext = extname(path);
    const base = basename(path, ext);
    const dir = dirname(path);
    // Strictly increasing stamps, so that backups sort by age even when rotations come within a millisecond.
    let t = Math.max(Date.now(), this.lastBackupMs + 1);
    while (await exists(join(dir, `${base}-${stamp(new Date(t))}${ext}`))) t++;
    this.lastBackupMs = t;
    try {
      await rename(path, join(dir, `${base}-${stamp(new Date(t))}${ext}`));
      const fd = await openFd(path, 'a', 0o600);
      const old = this.fd;
      this.fd = fd;
      this.size = 0;
      await closeFd(old);
    } catch (err) {
      this.opts.log.error({ err, path }, 'cannot rotate the audit log; writing on to the current file');
      return;
    }
    if (this.opts.maxBackups > 0) await this.prune(dir, base, ext);
  }

  private async prune(dir: string, base: string, ext: string): Promise<void> {
    try {
      const backups = (await readdir(dir))
        .filter((f) => f.startsWith(`${base}-`) && f.endsWith(ext) && BACKUP_STAMP.test(f.slice(base.length + 1, f.length - ext.length)))
        .sort();
      for (const f of backups.slice(0, Math.max(0, backups.length - this.opts.maxBackups))) await unlink(join(dir, f));
    } catch (err) {
      this.opts.log.warn({ err, dir }, 'cannot delete old audit log backups');
    }
  }
}

async function exists(p: PathLike): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
