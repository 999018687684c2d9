#!/usr/bin/env node
/**
 * kubectl_complete-apikey: shell completion of the kubectl plugin. kubectl
 * (1.26 and later) runs it from PATH for `kubectl apikey <TAB>` with the words
 * after `apikey`, and reads cobra's __complete answer from its stdout.
 */
import { clusterNames } from './plugin/cluster-names.ts';
import { complete, DIRECTIVE, formatCompletion } from './plugin/completion.ts';

let answer: string;
try {
  answer = formatCompletion(await complete(process.argv.slice(2), clusterNames));
} catch {
  // Never a stack trace in the shell: no candidates, and cobra's error bit.
  answer = formatCompletion({ candidates: [], directive: DIRECTIVE.error });
}
// Exit once answered: a lookup that timed out may still hold a connection open, and the shell waits.
process.stdout.write(answer, () => process.exit(0));
