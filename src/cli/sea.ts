/**
 * The entry of the plugin's single executable (`npm run build:plugin-sea`):
 * one file that is the plugin, and its shell completion when it is run under
 * the name kubectl_complete-apikey (a link to it), so people without Node.js
 * install one binary. No top-level await: Node's single executables run a
 * CommonJS script.
 */
import { clusterNames } from './plugin/cluster-names.ts';
import { complete, DIRECTIVE, formatCompletion } from './plugin/completion.ts';
import { runPlugin } from './plugin/index.ts';
import { startedForCompletion } from './plugin/invoked-as.ts';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (!startedForCompletion(process.argv0)) {
    process.exitCode = await runPlugin(args);
    return;
  }
  try {
    process.stdout.write(formatCompletion(await complete(args, clusterNames)));
  } catch {
    process.stdout.write(formatCompletion({ candidates: [], directive: DIRECTIVE.error }));
  }
}

void main();
