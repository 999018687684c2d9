/**
 * After the suite: every log line that the suite's processes wrote must hold
 * none of the secrets the suite saw, nothing shaped like an API key secret,
 * and no JWT. Findings name the file and line, never the secret.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const SECRET_SHAPE = /aks_[0-9A-Za-z]{49}/;
const JWT_SHAPE = /eyJ[0-9A-Za-z_-]{10,}\.eyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{20,}/;

export interface ScanResult { files: number; lines: number; secrets: number; findings: string[] }

export function scanLogs(logDir: string): ScanResult {
  const result: ScanResult = { files: 0, lines: 0, secrets: 0, findings: [] };
  if (!existsSync(logDir)) return result;
  const seenFile = join(logDir, 'secrets.seen');
  const secrets = new Set(existsSync(seenFile) ? readFileSync(seenFile, 'utf8').split('\n').filter((s) => s.length >= 16) : []);
  result.secrets = secrets.size;
  for (const f of readdirSync(logDir).filter((n) => n.endsWith('.log'))) {
    result.files++;
    const lines = readFileSync(join(logDir, f), 'utf8').split('\n');
    lines.forEach((line, i) => {
      result.lines++;
      const where = `${f}:${i + 1}`;
      if (SECRET_SHAPE.test(line)) result.findings.push(`${where}: something shaped like an API key secret`);
      else if (JWT_SHAPE.test(line)) result.findings.push(`${where}: a JWT`);
      else for (const s of secrets) if (line.includes(s)) { result.findings.push(`${where}: a secret the suite saw`); break; }
    });
  }
  return result;
}
