import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PLUGIN_VERSION, versionInfo } from './version.ts';

describe('kubectl apikey version', () => {
  it("is package.json's version", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(PLUGIN_VERSION).toBe(pkg.version);
  });

  it("has the shape of kubectl version's clientVersion, with Go's platform names", () => {
    const info = versionInfo('1.23.4');
    expect(info.clientVersion).toMatchObject({ major: '1', minor: '23', gitVersion: 'v1.23.4', nodeVersion: process.version });
    expect(info.clientVersion.platform).toMatch(/^[a-z0-9]+\/(amd64|arm64|386|arm|ppc64le|s390x|[a-z0-9]+)$/);
    if (process.arch === 'x64') expect(info.clientVersion.platform).toBe(`${process.platform}/amd64`);
  });
});
