/**
 * The two third-party judges of an object's status, run for real on objects
 * read from the test control plane:
 *
 * - kstatus: sigs.k8s.io/cli-utils' status.Compute, the library Flux, kpt and
 *   cli-utils' appliers wait with, through test/cluster/bins/kstatus (built
 *   from its pinned Go module on first use, cached like the control plane);
 * - Argo CD's health check: manifests/argocd/health.lua, run by the Lua 5.1
 *   interpreter (Argo CD runs it with gopher-lua, a Lua 5.1), with `obj`
 *   the object and only the base, string, table and math libraries in
 *   reach, as in Argo CD's sandbox.
 */
import { spawn } from 'node:child_process';
import { ensureKstatus } from '../cluster/binaries.ts';
import { ARGOCD_HEALTH_LUA } from '../../scripts/render-manifests.ts';

/** What status.Compute says: Current, InProgress, Failed, Terminating, NotFound or Unknown. */
export interface KstatusResult { status: string; message: string }
/** What the health check says: Healthy, Progressing or Degraded. */
export interface HealthResult { status: string; message: string }

/** The Lua interpreter: LUA, or Debian's lua5.1 (.ci/run installs it when missing). */
export const LUA = process.env.LUA ?? 'lua5.1';

function run(cmd: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

/** kstatus's verdict on each object, in order. */
export async function kstatus(objects: object[]): Promise<KstatusResult[]> {
  const bin = await ensureKstatus();
  const out = await run(bin, [], objects.map((o) => JSON.stringify(o)).join('\n') + '\n');
  return out.split('\n').filter((line) => line !== '').map((line) => {
    const r = JSON.parse(line) as { status?: string; message?: string; error?: string };
    if (r.error) throw new Error(`kstatus: ${r.error}`);
    return { status: r.status ?? '', message: r.message ?? '' };
  });
}

/** A Lua string literal of any text: every byte but letters, digits and spaces as a decimal escape. */
function luaString(s: string): string {
  const plain = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x20;
  return `"${[...Buffer.from(s, 'utf8')].map((b) => (plain(b) ? String.fromCharCode(b) : `\\${String(b).padStart(3, '0')}`)).join('')}"`;
}

/** A JSON value as a Lua table constructor, as Argo CD hands the object to the script (null is nil). */
export function luaValue(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'nil';
  if (typeof v === 'string') return luaString(v);
  if (Array.isArray(v)) return `{${v.map(luaValue).join(',')}}`;
  return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `[${luaString(k)}]=${luaValue(x)}`).join(',')}}`;
}

/** Argo CD's verdict on one object, from health.lua (or `script`, a path) run by the real interpreter. */
export async function argocdHealth(obj: object, script = ARGOCD_HEALTH_LUA): Promise<HealthResult> {
  const program = `
local check = assert(loadfile(${luaString(script)}))
setfenv(check, { obj = ${luaValue(obj)}, ipairs = ipairs, pairs = pairs, next = next, type = type,
  tostring = tostring, tonumber = tonumber, error = error, pcall = pcall, select = select, unpack = unpack,
  string = string, table = table, math = math })
local hs = check()
assert(type(hs) == "table" and type(hs.status) == "string", "the check returned no status")
io.write(hs.status, "\\n", hs.message or "")
`;
  const out = await run(LUA, ['-'], program);
  const nl = out.indexOf('\n');
  return { status: out.slice(0, nl), message: out.slice(nl + 1) };
}
