/**
 * A SoftHSM token of a test's own: a temporary directory with a softhsm2.conf
 * whose tokendir is inside it (SOFTHSM2_CONF points the module there), one
 * token initialised with a random label, user PIN and SO PIN, and the user
 * PIN in a file as the chart mounts it. `remove`/`restore` take the token's
 * files away and put them back (a token pulled out and plugged in again);
 * `objects` reads what the token holds through the module, as an auditor
 * would, with the attributes that say whether a private key can leave it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordSecret } from './processes.ts';
import { run } from './run.ts';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface TokenObject {
  class: 'private' | 'public';
  label: string;
  id: string;
  token: boolean;
  sensitive?: boolean;
  extractable?: boolean;
  /** Whether the module refused to give the private value (CKR_ATTRIBUTE_SENSITIVE). */
  valueRefused?: boolean;
}

export interface SoftHsm {
  dir: string;
  label: string;
  pinFile: string;
  env: { SOFTHSM2_CONF: string };
  /** The --pkcs11-* flags of a program using this token. */
  flags(labelPrefix?: string): string[];
  setPinFile(pin: string): void;
  /** The right PIN back in the PIN file. */
  restorePin(): void;
  remove(): void;
  restore(): void;
  objects(): TokenObject[];
  cleanup(): void;
}

type Pkcs11 = typeof import('pkcs11js');

export async function createSoftHsm(): Promise<SoftHsm> {
  const dir = mkdtempSync(join(tmpdir(), 'softhsm-'));
  const tokenDir = join(dir, 'tokens');
  const away = join(dir, 'removed');
  mkdirSync(tokenDir);
  mkdirSync(away);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const env = { SOFTHSM2_CONF: conf };
  const label = `t-${randomBytes(4).toString('hex')}`;
  const pin = randomBytes(12).toString('hex');
  const soPin = randomBytes(12).toString('hex');
  recordSecret(pin);
  recordSecret(soPin);
  const r = await run('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], { env: { ...process.env, ...env } });
  if (r.code !== 0) throw new Error(`softhsm2-util --init-token failed: ${r.stderr}`);
  const pinFile = join(dir, 'pin');
  writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
  const move = (from: string, to: string) => {
    for (const f of readdirSync(from)) renameSync(join(from, f), join(to, f));
  };
  return {
    dir, label, pinFile, env,
    flags: (labelPrefix = 'apikey-operator-') => [
      '--pkcs11-module', SOFTHSM_MODULE, '--pkcs11-token-label', label, '--pkcs11-pin-file', pinFile, '--pkcs11-key-label-prefix', labelPrefix,
    ],
    setPinFile: (p) => writeFileSync(pinFile, `${p}\n`),
    restorePin: () => writeFileSync(pinFile, `${pin}\n`),
    remove: () => move(tokenDir, away),
    restore: () => move(away, tokenDir),
    objects: () => readObjects(conf, label, pin),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Every key object of the token, read through the module with the user PIN. */
function readObjects(conf: string, label: string, pin: string): TokenObject[] {
  const saved = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = conf;
  const p = createRequire(import.meta.url)('pkcs11js') as Pkcs11;
  const lib = new p.PKCS11();
  lib.load(SOFTHSM_MODULE);
  lib.C_Initialize();
  try {
    const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === label);
    if (!slot) throw new Error(`no token ${label}`);
    const s = lib.C_OpenSession(slot, p.CKF_SERIAL_SESSION);
    lib.C_Login(s, p.CKU_USER, pin);
    lib.C_FindObjectsInit(s, []);
    const handles = lib.C_FindObjects(s, 1000);
    lib.C_FindObjectsFinal(s);
    return handles.flatMap((h): TokenObject[] => {
      const [cls, lbl, id, tok] = lib.C_GetAttributeValue(s, h, [{ type: p.CKA_CLASS }, { type: p.CKA_LABEL }, { type: p.CKA_ID }, { type: p.CKA_TOKEN }]);
      const klass = cls!.value.readUInt32LE(0);
      const common = { label: lbl!.value.toString('utf8'), id: id!.value.toString('hex'), token: tok!.value[0] === 1 };
      if (klass === p.CKO_PUBLIC_KEY) return [{ class: 'public', ...common }];
      if (klass !== p.CKO_PRIVATE_KEY) return [];
      const [sens, extr] = lib.C_GetAttributeValue(s, h, [{ type: p.CKA_SENSITIVE }, { type: p.CKA_EXTRACTABLE }]);
      let valueRefused = false;
      try {
        lib.C_GetAttributeValue(s, h, [{ type: p.CKA_VALUE }]);
      } catch (err) {
        valueRefused = /CKR_ATTRIBUTE_SENSITIVE/.test((err as Error).message);
      }
      return [{ class: 'private', ...common, sensitive: sens!.value[0] === 1, extractable: extr!.value[0] === 1, valueRefused }];
    });
  } finally {
    lib.C_Finalize();
    lib.close();
    if (saved === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = saved;
  }
}
