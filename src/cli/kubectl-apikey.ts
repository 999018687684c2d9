#!/usr/bin/env node
/**
 * kubectl-apikey: the kubectl plugin (`kubectl apikey ...`; kubectl finds
 * this executable on PATH). The same commands are served by
 * `apikey-operator list`, `apikey-operator create`, and so on.
 */
import { runPlugin } from './plugin/index.ts';

process.exitCode = await runPlugin(process.argv.slice(2));
