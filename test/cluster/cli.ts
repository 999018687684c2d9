/**
 * npm run cluster:build [-- --node] [--kstatus]   (builds and caches the binaries)
 * npm run cluster:up -- --dir DIR [--node]   (returns once ready; DIR/kubeconfig is admin)
 * npm run cluster:down -- --dir DIR          (stops every process that `up` started, and removes the node)
 *
 * --node adds one real worker node (root only): see node/node.ts. --kstatus builds the kstatus
 * tool of test/gitops-status.test.ts ahead of time (that test builds it on first use otherwise).
 */
import { parseArgs } from 'node:util';
import { ensureBinaries, ensureKstatus, ensureNodeBinaries, MissingToolchainError } from './binaries.ts';
import { down, up } from './controlplane.ts';
import { NodeClusterRunningError } from './node/lock.ts';
import { NodeRequirementsError } from './node/requirements.ts';

const [command, ...rest] = process.argv.slice(2);
const { values } = parseArgs({ args: rest, options: { dir: { type: 'string' }, node: { type: 'boolean' }, kstatus: { type: 'boolean' } }, strict: true });

async function main(): Promise<void> {
  switch (command) {
    case 'build': {
      const b = { ...await ensureBinaries(), ...values.node ? await ensureNodeBinaries() : {},
        ...values.kstatus ? { kstatus: await ensureKstatus() } : {} };
      console.log(JSON.stringify(b, null, 2));
      return;
    }
    case 'up': {
      if (!values.dir) throw new Error('usage: npm run cluster:up -- --dir DIR [--node]');
      const state = await up(values.dir, { node: values.node ?? false });
      console.log(`export KUBECONFIG=${state.kubeconfig}`);
      return;
    }
    case 'down': {
      if (!values.dir) throw new Error('usage: npm run cluster:down -- --dir DIR');
      await down(values.dir);
      console.log(`stopped the cluster in ${values.dir}`);
      return;
    }
    default:
      throw new Error('usage: cli.ts build [--node] [--kstatus] | up --dir DIR [--node] | down --dir DIR');
  }
}

/** Errors that are the machine's, not the fixture's: their message says what to do. */
const explained = [MissingToolchainError, NodeRequirementsError, NodeClusterRunningError];

main().catch((err: unknown) => {
  console.error(explained.some((E) => err instanceof E) ? `error: ${(err as Error).message}` : err);
  process.exit(1);
});
