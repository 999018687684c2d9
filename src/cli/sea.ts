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
  let answer: string;
  try {
    answer = formatCompletion(await complete(args, clusterNames));
  } catch {
    answer = formatCompletion({ candidates: [], directive: DIRECTIVE.error });
  }
  // Exit once answered: a lookup that timed out may still hold a connection open, and the shell waits.
  process.stdout.write(answer, () => process.exit(0));
}

void main();
