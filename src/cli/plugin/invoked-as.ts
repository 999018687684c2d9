/**
 * Which program the single executable is being: kubectl runs
 * kubectl_complete-apikey (a link to the same file) by the name it found on
 * PATH, and that name is argv[0].
 */
import { basename } from 'node:path';

export function startedForCompletion(argv0: string): boolean {
  return basename(argv0).startsWith('kubectl_complete-');
}
