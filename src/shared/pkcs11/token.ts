/**
 * One PKCS#11 token, through the `pkcs11js` addon: key pairs generated
 * inside it, signatures made by it, and a connection that heals itself.
 *
 * Invariants:
 * - A private key is created with CKA_TOKEN, CKA_PRIVATE and CKA_SENSITIVE
 *   true and CKA_EXTRACTABLE false, and read back after generation; a module
 *   that ignored the template gets the pair destroyed and an error. This
 *   process never reads a private key's value: it holds object handles only.
 * - The PIN is read from a file at each login and kept in no field; after
 *   CKR_PIN_INCORRECT the same PIN is not tried again (a real HSM locks its
 *   user after a few wrong PINs), only a changed file is.
 * - Any failure that can mean the token, the session or the login is gone
 *   (see LOST), and a key that is not found, closes everything (C_Finalize,
 *   unload) and the connection is re-made from scratch with capped backoff,
 *   so a token that was removed and put back, or re-initialised, is found
 *   again without a restart (SoftHSM, for one, does not see a token
 *   directory come back without a new C_Initialize).
 * - Signing uses a fixed pool of sessions (`sessions`), each used by one
 *   operation at a time (PKCS#11 sessions are not concurrent); callers past
 *   the pool wait in a bounded queue, and past that are refused at once.
 *   C_Sign and C_GenerateKeyPair run on libuv's thread pool (pkcs11js's
 *   async calls), so the event loop never waits for the module; the module is
 *   initialised with CKF_OS_LOCKING_OK for that.
 * - A key pair is destroyed (destroy) only when its label is this program's
 *   prefix followed by its own CKA_ID, the form `generate` gives it.
 * - State changes are logged once each (problem and the CKR_ name, never a
 *   PIN) and exported as metrics: `apikey_operator_pkcs11_up` and
 *   `apikey_operator_pkcs11_errors_total{operation,problem}`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { JWK } from 'jose';
import type { Logger } from '../log.ts';
import { ecdsaResultToJose, ED25519_OID_DER, P256_OID_DER, publicJwkOf } from './der.ts';

type Pkcs11Module = typeof import('pkcs11js');
type Lib = InstanceType<Pkcs11Module['PKCS11']>;
type Handle = Buffer;

export type Pkcs11Algorithm = 'ES256' | 'EdDSA';

/** Why the token cannot sign: a small fixed set, for logs, metrics and the troubleshooting guide. */
export type Pkcs11Problem =
  | 'module_missing' | 'token_missing' | 'pin_file' | 'pin_incorrect' | 'session_lost' | 'key_missing'
  | 'mechanism_unsupported' | 'busy' | 'error';

export const PKCS11_PROBLEMS: readonly Pkcs11Problem[] = [
  'module_missing', 'token_missing', 'pin_file', 'pin_incorrect', 'session_lost', 'key_missing', 'mechanism_unsupported', 'busy', 'error',
];

/** Where a private key lives in the token: what the signing-keys Secret records of it. */
export interface Pkcs11KeyRef {
  /** CKA_LABEL. */
  label: string;
  /** CKA_ID, hex. */
  id: string;
}

/** What the flags say (--pkcs11-module, --pkcs11-token-label/--pkcs11-token-serial, --pkcs11-pin-file, --pkcs11-key-label-prefix, --pkcs11-sessions). */
export type Pkcs11Config = Pick<Pkcs11Options, 'modulePath' | 'tokenLabel' | 'tokenSerial' | 'pinFile' | 'labelPrefix' | 'sessions'>;

export const DEFAULT_PKCS11_LABEL_PREFIX = 'apikey-operator-';
export const DEFAULT_PKCS11_SESSIONS = 4;

export interface Pkcs11Options {
  /** Path of the module (the vendor's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so). */
  modulePath: string;
  /** The token, by CKA_LABEL of its token info (trailing blanks ignored)... */
  tokenLabel?: string;
  /** ...or by serial number. */
  tokenSerial?: string;
  /** A file holding the user PIN (a mounted Secret); one trailing newline is ignored. */
  pinFile: string;
  /** CKA_LABEL prefix of the keys this program creates. */
  labelPrefix: string;
  /** Sessions in the pool (concurrent signatures). */
  sessions: number;
  /** The controller creates objects: it needs read/write sessions. */
  readWrite?: boolean;
  log: Logger;
  /** Metrics go here when given. */
  registry?: Registry;
}

/** An operation the token refused or could not do now; `problem` says why. */
export class Pkcs11Unavailable extends Error {
  readonly problem: Pkcs11Problem;

  constructor(problem: Pkcs11Problem, message: string) {
    super(message);
    this.problem = problem;
    this.name = 'Pkcs11Unavailable';
  }
}

const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKM_EDDSA = 0x1057;
/** Waiting signers beyond the pool; more are refused with `busy`. */
const MAX_WAITERS = 1024;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30_000;

/** Return values after which nothing of the connection can be trusted. */
const LOST = new Set([
  'CKR_DEVICE_REMOVED', 'CKR_DEVICE_ERROR', 'CKR_TOKEN_NOT_PRESENT', 'CKR_TOKEN_NOT_RECOGNIZED', 'CKR_SESSION_CLOSED',
  'CKR_SESSION_HANDLE_INVALID', 'CKR_USER_NOT_LOGGED_IN', 'CKR_CRYPTOKI_NOT_INITIALIZED', 'CKR_GENERAL_ERROR',
  'CKR_SLOT_ID_INVALID', 'CKR_DEVICE_MEMORY', 'CKR_PIN_EXPIRED', 'CKR_SESSION_COUNT',
]);
/** Return values that mean a key handle went stale (the object store changed). */
const STALE_KEY = new Set(['CKR_KEY_HANDLE_INVALID', 'CKR_OBJECT_HANDLE_INVALID']);

/** The CKR_ name of a pkcs11js error, or the error's class for anything else. */
export function errorCode(err: unknown): string {
  const m = err instanceof Error ? /^CKR_[A-Z_0-9]+/.exec(err.message) : null;
  return m ? m[0] : err instanceof Error ? err.name : 'unknown';
}

let addon: Pkcs11Module | undefined;
function loadAddon(): Pkcs11Module {
  addon ??= createRequire(import.meta.url)('pkcs11js') as Pkcs11Module;
  return addon;
}

interface Connection {
  lib: Lib;
  slot: Handle;
  sessions: Handle[];
  free: Handle[];
  waiters: ((s: Handle | undefined) => void)[];
  keys: Map<string, Handle>;
}

export interface Pkcs11Health {
  up: boolean;
  problem?: Pkcs11Problem;
  /** The module's own word (a CKR_ name or a load error's class), when there is one. */
  code?: string;
}

export class Pkcs11Token {
  private conn: Connection | undefined;
  private health: Pkcs11Health = { up: false, problem: 'session_lost' };
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = RECONNECT_MIN_MS;
  /** SHA-256 of the PIN that was refused, so that it is not tried again. */
  private refusedPin: string | undefined;
  private stopped = false;
  private readonly upGauge?: Gauge;
  private readonly errors?: Counter<'operation' | 'problem'>;
  private readonly signSeconds?: Histogram;

  private readonly opts: Pkcs11Options;

  constructor(opts: Pkcs11Options) {
    this.opts = opts;
    const registers = opts.registry ? [opts.registry] : undefined;
    if (registers) {
      this.upGauge = new Gauge({ name: 'apikey_operator_pkcs11_up', help: '1 while the PKCS#11 token is logged in and usable', registers });
      this.errors = new Counter({
        name: 'apikey_operator_pkcs11_errors_total', help: 'PKCS#11 failures by operation (connect, sign, generate, probe) and problem',
        labelNames: ['operation', 'problem'], registers,
      });
      this.signSeconds = new Histogram({
        name: 'apikey_operator_pkcs11_sign_duration_seconds', help: 'Time of one signature through the PKCS#11 module, pool wait included', registers,
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      });
      this.upGauge.set(0);
    }
  }

  /** Connects now; returns connected, or after the first attempt failed (then retries on its own). */
  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Whether the token can be used now, and why not. */
  state(): Pkcs11Health {
    return this.health;
  }

  /** Closes every session and unloads the module. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.disconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.backoffMs * (0.8 + Math.random() * 0.4);
    this.backoffMs = Math.min(this.backoffMs * 2, RECONNECT_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  private setHealth(next: Pkcs11Health, operation: string): void {
    const prev = this.health;
    this.health = next;
    this.upGauge?.set(next.up ? 1 : 0);
    if (!next.up) this.errors?.inc({ operation, problem: next.problem ?? 'error' });
    if (prev.up === next.up && prev.problem === next.problem) return;
    if (next.up) this.opts.log.info({ module: this.opts.modulePath, sessions: this.opts.sessions }, 'PKCS#11 token connected');
    else {
      this.opts.log.warn({ module: this.opts.modulePath, operation, problem: next.problem, code: next.code },
        `PKCS#11 token unavailable (${next.problem}); retrying`);
    }
  }

  /** Synchronous: the module's C_Initialize, C_OpenSession and C_Login are quick local calls. */
  private connect(): void {
    if (this.stopped) return;
    this.disconnect();
    try {
      this.conn = this.open();
      // A missing key is not found by connecting again: the state stays (and the backoff grows) until a
      // signature or a probe finds the key (withSession), so that an outage logs once, not once a round.
      if (this.health.problem !== 'key_missing') {
        this.backoffMs = RECONNECT_MIN_MS;
        this.setHealth({ up: true }, 'connect');
      }
    } catch (err) {
      this.disconnect();
      this.setHealth(this.classify(err, 'connect'), 'connect');
      this.scheduleReconnect();
    }
  }

  private classify(err: unknown, _operation: string): Pkcs11Health {
    if (err instanceof Pkcs11Unavailable) return { up: false, problem: err.problem, code: err.problem };
    const code = errorCode(err);
    if (code === 'CKR_PIN_INCORRECT' || code === 'CKR_PIN_LOCKED' || code === 'CKR_PIN_LEN_RANGE') return { up: false, problem: 'pin_incorrect', code };
    if (code === 'CKR_MECHANISM_INVALID') return { up: false, problem: 'mechanism_unsupported', code };
    if (LOST.has(code)) return { up: false, problem: 'session_lost', code };
    return { up: false, problem: 'error', code };
  }

  /** Loads the module, finds the token, opens the pool and logs in. Throws; the caller cleans up. */
  private open(): Connection {
    let mod: Pkcs11Module;
    try {
      mod = loadAddon();
    } catch {
      // An optional dependency: an install that skipped its build (npm --ignore-scripts, no compiler) has none.
      throw new Pkcs11Unavailable('module_missing', 'the pkcs11js addon is not installed (an optional dependency built by npm install)');
    }
    const lib = new mod.PKCS11();
    try {
      lib.load(this.opts.modulePath);
    } catch (err) {
      throw new Pkcs11Unavailable('module_missing', `cannot load the PKCS#11 module ${this.opts.modulePath}: ${(err as Error).name}`);
    }
    const conn: Connection = { lib, slot: Buffer.alloc(0), sessions: [], free: [], waiters: [], keys: new Map() };
    this.conn = conn;
    lib.C_Initialize({ flags: mod.CKF_OS_LOCKING_OK });
    const slot = lib.C_GetSlotList(true).find((s) => {
      const info = lib.C_GetTokenInfo(s);
      if (this.opts.tokenSerial !== undefined) return info.serialNumber.trim() === this.opts.tokenSerial;
      return info.label.trim() === this.opts.tokenLabel;
    });
    if (!slot) {
      const which = this.opts.tokenSerial !== undefined ? `serial ${this.opts.tokenSerial}` : `label ${this.opts.tokenLabel ?? ''}`;
      throw new Pkcs11Unavailable('token_missing', `no token with ${which} is present`);
    }
    conn.slot = slot;
    const flags = mod.CKF_SERIAL_SESSION | (this.opts.readWrite ? mod.CKF_RW_SESSION : 0);
    for (let i = 0; i < this.opts.sessions; i++) conn.sessions.push(lib.C_OpenSession(slot, flags));
    conn.free = [...conn.sessions];
    let pin: string;
    try {
      pin = readFileSync(this.opts.pinFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new Pkcs11Unavailable('pin_file', `cannot read the PIN file ${this.opts.pinFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!pin) throw new Pkcs11Unavailable('pin_file', `the PIN file ${this.opts.pinFile} is empty`);
    const pinHash = createHash('sha256').update(pin).digest('hex');
    if (pinHash === this.refusedPin) throw new Pkcs11Unavailable('pin_incorrect', 'the PIN was refused; waiting for a new PIN file');
    try {
      lib.C_Login(conn.sessions[0]!, mod.CKU_USER, pin);
    } catch (err) {
      const code = errorCode(err);
      if (code === 'CKR_PIN_INCORRECT' || code === 'CKR_PIN_LOCKED') this.refusedPin = pinHash;
      if (code !== 'CKR_USER_ALREADY_LOGGED_IN') throw err;
    }
    this.refusedPin = undefined;
    return conn;
  }

  private disconnect(): void {
    const conn = this.conn;
    this.conn = undefined;
    if (!conn) return;
    for (const w of conn.waiters) w(undefined);
    try {
      conn.lib.C_Finalize();
    } catch {
      // Already gone: nothing to finalise.
    }
    try {
      conn.lib.close();
    } catch {
      // The library was not loaded.
    }
  }

  /** A failure of `operation`: loses the connection when it may be gone, and starts reconnecting. */
  private fail(err: unknown, operation: string): Pkcs11Unavailable {
    const health = this.classify(err, operation);
    if (health.problem === 'busy' || health.problem === 'mechanism_unsupported') {
      this.errors?.inc({ operation, problem: health.problem });
      return err instanceof Pkcs11Unavailable ? err : new Pkcs11Unavailable(health.problem, `PKCS#11 ${operation}: ${health.code}`);
    }
    this.disconnect();
    this.setHealth(health, operation);
    this.scheduleReconnect();
    return err instanceof Pkcs11Unavailable ? err : new Pkcs11Unavailable(health.problem!, `PKCS#11 ${operation} failed: ${health.code}`);
  }

  private connected(): Connection {
    const conn = this.conn;
    if (!conn) {
      throw new Pkcs11Unavailable(this.health.problem ?? 'session_lost', `the PKCS#11 token is unavailable (${this.health.problem})`);
    }
    return conn;
  }

  private acquire(conn: Connection): Handle | Promise<Handle | undefined> {
    const s = conn.free.pop();
    if (s) return s;
    if (conn.waiters.length >= MAX_WAITERS) throw new Pkcs11Unavailable('busy', 'every PKCS#11 session is busy');
    return new Promise((resolve) => conn.waiters.push(resolve));
  }

  private release(conn: Connection, s: Handle): void {
    if (this.conn !== conn) return;
    const next = conn.waiters.shift();
    if (next) next(s);
    else conn.free.push(s);
  }

  /** Runs `fn` with a session of the pool; a failure loses the connection when it should. */
  private async withSession<T>(operation: string, fn: (conn: Connection, s: Handle) => Promise<T> | T): Promise<T> {
    const conn = this.connected();
    let session: Handle | undefined;
    try {
      session = await this.acquire(conn);
      if (!session) throw new Pkcs11Unavailable(this.health.problem ?? 'session_lost', 'the PKCS#11 connection was reset');
      const result = await fn(conn, session);
      if (!this.health.up && this.conn === conn) this.setHealth({ up: true }, operation);
      return result;
    } catch (err) {
      if (this.conn === conn) throw this.fail(err, operation);
      throw err instanceof Pkcs11Unavailable ? err : new Pkcs11Unavailable('session_lost', `PKCS#11 ${operation}: the connection was reset`);
    } finally {
      if (session) this.release(conn, session);
    }
  }

  /** The private key's handle, found by CKA_ID and CKA_LABEL and cached until the connection is re-made. */
  private findKey(conn: Connection, s: Handle, ref: Pkcs11KeyRef): Handle {
    const cacheKey = `${ref.id}/${ref.label}`;
    const cached = conn.keys.get(cacheKey);
    if (cached) return cached;
    const mod = loadAddon();
    conn.lib.C_FindObjectsInit(s, [
      { type: mod.CKA_CLASS, value: mod.CKO_PRIVATE_KEY },
      { type: mod.CKA_ID, value: Buffer.from(ref.id, 'hex') },
      { type: mod.CKA_LABEL, value: ref.label },
    ]);
    let found: Handle[];
    try {
      found = conn.lib.C_FindObjects(s, 2);
    } finally {
      conn.lib.C_FindObjectsFinal(s);
    }
    if (found.length !== 1) {
      throw new Pkcs11Unavailable('key_missing', `the token holds ${found.length} private keys labelled ${ref.label}`);
    }
    conn.keys.set(cacheKey, found[0]!);
    return found[0]!;
  }

  /**
   * Signs `data` with the key `ref`: ES256 as CKM_ECDSA over its SHA-256
   * (the digest is computed here; the result is returned as JOSE r||s),
   * EdDSA as CKM_EDDSA over the data itself.
   */
  async sign(ref: Pkcs11KeyRef, alg: Pkcs11Algorithm, data: Buffer): Promise<Buffer> {
    const start = performance.now();
    const out = await this.withSession('sign', async (conn, s) => {
      const input = alg === 'ES256' ? createHash('sha256').update(data).digest() : data;
      const mechanism = alg === 'ES256' ? loadAddon().CKM_ECDSA : CKM_EDDSA;
      for (let attempt = 0; ; attempt++) {
        const key = this.findKey(conn, s, ref);
        try {
          conn.lib.C_SignInit(s, { mechanism }, key);
          return await conn.lib.C_SignAsync(s, input, Buffer.alloc(128));
        } catch (err) {
          // The object store changed under a cached handle: look the key up once more.
          if (attempt > 0 || !STALE_KEY.has(errorCode(err))) throw err;
          conn.keys.delete(`${ref.id}/${ref.label}`);
        }
      }
    });
    this.signSeconds?.observe((performance.now() - start) / 1000);
    return alg === 'ES256' ? ecdsaResultToJose(out) : out;
  }

  /** Whether the token holds the private key `ref` now (readiness probes). */
  async probe(ref: Pkcs11KeyRef | undefined): Promise<Pkcs11Health> {
    if (!this.conn) return this.health;
    try {
      await this.withSession('probe', (conn, s) => {
        conn.lib.C_GetSessionInfo(s);
        if (ref) {
          conn.keys.delete(`${ref.id}/${ref.label}`);
          this.findKey(conn, s, ref);
        }
      });
    } catch {
      // fail() has recorded the problem and started reconnecting.
    }
    return this.health;
  }

  /** The public keys in the token whose CKA_LABEL starts with this program's prefix (at most 1000). */
  async listPublicKeys(): Promise<{ ref: Pkcs11KeyRef; alg: Pkcs11Algorithm; publicJwk: JWK }[]> {
    return this.withSession('list', (conn, s) => {
      const mod = loadAddon();
      conn.lib.C_FindObjectsInit(s, [{ type: mod.CKA_CLASS, value: mod.CKO_PUBLIC_KEY }]);
      let handles: Handle[];
      try {
        handles = conn.lib.C_FindObjects(s, 1000);
      } finally {
        conn.lib.C_FindObjectsFinal(s);
      }
      return handles.flatMap((h) => {
        const text = conn.lib.C_GetAttributeValue(s, h, [{ type: mod.CKA_LABEL }])[0]!.value.toString('utf8');
        if (!text.startsWith(this.opts.labelPrefix)) return [];
        const [id, params, point] = conn.lib.C_GetAttributeValue(s, h, [
          { type: mod.CKA_ID }, { type: mod.CKA_EC_PARAMS }, { type: mod.CKA_EC_POINT },
        ]);
        const publicJwk = publicJwkOf(params!.value, point!.value);
        return [{ ref: { label: text, id: id!.value.toString('hex') }, alg: publicJwk.kty === 'OKP' ? 'EdDSA' as const : 'ES256' as const, publicJwk }];
      });
    });
  }

  /**
   * Destroys the key pair `ref` (its private and its public key object) and
   * returns how many objects went (0: already gone). Only a pair of the form
   * this program makes (CKA_LABEL = the prefix and the CKA_ID in hex) is
   * touched, and only key objects: a record naming another application's
   * object (a tampered Secret) destroys nothing.
   */
  async destroy(ref: Pkcs11KeyRef): Promise<number> {
    if (!/^[0-9a-f]{32}$/.test(ref.id) || ref.label !== `${this.opts.labelPrefix}${ref.id}`) {
      return Promise.reject(new Error(`refusing to destroy ${JSON.stringify(ref.label)}: not a key this program made (${this.opts.labelPrefix}<id>)`));
    }
    return this.withSession('destroy', (conn, s) => {
      const mod = loadAddon();
      let destroyed = 0;
      for (const cls of [mod.CKO_PRIVATE_KEY, mod.CKO_PUBLIC_KEY]) {
        conn.lib.C_FindObjectsInit(s, [
          { type: mod.CKA_CLASS, value: cls }, { type: mod.CKA_ID, value: Buffer.from(ref.id, 'hex') }, { type: mod.CKA_LABEL, value: ref.label },
        ]);
        let found: Handle[];
        try {
          found = conn.lib.C_FindObjects(s, 4);
        } finally {
          conn.lib.C_FindObjectsFinal(s);
        }
        for (const h of found) {
          conn.lib.C_DestroyObject(s, h);
          destroyed++;
        }
      }
      conn.keys.delete(`${ref.id}/${ref.label}`);
      return destroyed;
    });
  }

  /**
   * Generates a key pair inside the token: the private half sensitive and
   * not extractable, the public half's JWK returned with where the private
   * half lives.
   */
  async generate(alg: Pkcs11Algorithm): Promise<{ ref: Pkcs11KeyRef; publicJwk: JWK }> {
    return this.withSession('generate', async (conn, s) => {
      const mod = loadAddon();
      const id = randomBytes(16);
      const ref = { label: `${this.opts.labelPrefix}${id.toString('hex')}`, id: id.toString('hex') };
      const common = [
        { type: mod.CKA_TOKEN, value: true },
        { type: mod.CKA_LABEL, value: ref.label },
        { type: mod.CKA_ID, value: id },
      ];
      const ecParams = alg === 'ES256' ? P256_OID_DER : ED25519_OID_DER;
      const mechanism = alg === 'ES256' ? mod.CKM_EC_KEY_PAIR_GEN : CKM_EC_EDWARDS_KEY_PAIR_GEN;
      const pair = await conn.lib.C_GenerateKeyPairAsync(s, { mechanism }, [
        ...common, { type: mod.CKA_EC_PARAMS, value: ecParams }, { type: mod.CKA_VERIFY, value: true },
      ], [
        ...common, { type: mod.CKA_PRIVATE, value: true }, { type: mod.CKA_SENSITIVE, value: true },
        { type: mod.CKA_EXTRACTABLE, value: false }, { type: mod.CKA_SIGN, value: true },
      ]);
      try {
        const [sensitive, extractable] = conn.lib.C_GetAttributeValue(s, pair.privateKey, [
          { type: mod.CKA_SENSITIVE }, { type: mod.CKA_EXTRACTABLE },
        ]);
        if (sensitive?.value[0] !== 1 || extractable?.value[0] !== 0) {
          throw new Pkcs11Unavailable('error', 'the module made a private key that is not sensitive or is extractable');
        }
        const [params, point] = conn.lib.C_GetAttributeValue(s, pair.publicKey, [{ type: mod.CKA_EC_PARAMS }, { type: mod.CKA_EC_POINT }]);
        return { ref, publicJwk: publicJwkOf(params!.value, point!.value) };
      } catch (err) {
        for (const h of [pair.privateKey, pair.publicKey]) {
          try {
            conn.lib.C_DestroyObject(s, h);
          } catch {
            // Best effort: the pair is unusable either way.
          }
        }
        throw err;
      }
    });
  }
}
