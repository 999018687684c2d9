/**
 * `kubectl apikey version`: the plugin's version, as `Client Version: v0.1.0`
 * or, with -o json|yaml, in the shape of kubectl version's clientVersion.
 * It needs no cluster.
 */
import type { CommandDef, Invocation } from '../command.ts';
import { formatStructured } from '../output.ts';
import { data, text } from '../terminal.ts';

/** The package's version; a unit test keeps it equal to package.json's (a single executable has no package.json to read). */
export const PLUGIN_VERSION = '0.2.0';

/** Node's architecture names in Go's, as kubectl's platform field writes them (linux/amd64). */
const GO_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

export function versionInfo(version = PLUGIN_VERSION): { clientVersion: Record<string, string> } {
  const [major = '0', minor = '0'] = version.split('.');
  return {
    clientVersion: {
      major, minor, gitVersion: `v${version}`,
      nodeVersion: process.version,
      platform: `${process.platform}/${GO_ARCH[process.arch] ?? process.arch}`,
    },
  };
}

function version(inv: Invocation): Promise<number> {
  if (inv.output === 'table') text(`Client Version: v${PLUGIN_VERSION}\n`);
  else data(formatStructured(versionInfo(), inv.output));
  return Promise.resolve(0);
}

export const versionCommand: CommandDef = {
  name: 'version',
  summary: "print the plugin's version",
  description: "Print the plugin's version; with -o json|yaml, in the shape of kubectl version's clientVersion.",
  usage: 'version [flags]',
  positionals: { min: 0, max: 0, names: [] },
  output: ['json', 'yaml'],
  flags: [],
  examples: ['kubectl apikey version', 'kubectl apikey version -o json'],
  run: version,
};
