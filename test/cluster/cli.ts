/**
 * npm run cluster:build
 * npm run cluster:up -- --dir DIR     (returns once ready; DIR/kubeconfig is admin)
 * npm run cluster:down -- --dir DIR   (stops every process that `up` started)
 */
import { parseArgs } from 'node:util';
import { ensureBinaries, MissingToolchainError } from './binaries.ts';
import { down, up } from './controlplane.ts';

const [command, ...rest] = process.argv.slice(2);
const { values } = parseArgs({ args: rest, options: { dir: { type: 'string' } }, strict: true });

async function main(): Promise<void> {
  switch (command) {
    case 'build': {
      const b = await ensureBinaries();
      console.log(JSON.stringify(b, null, 2));
      return;
    }
    case 'up': {
      if (!values.dir) throw new Error('usage: npm run cluster:up -- --dir DIR');
      const state = await up(values.dir);
      console.log(`export KUBECONFIG=${state.kubeconfig}`);
      return;
    }
    case 'down': {
      if (!values.dir) throw new Error('usage: npm run cluster:down -- --dir DIR');
      await down(values.dir);
      console.log(`stopped the control plane in ${values.dir}`);
      return;
    }
    default:
      throw new Error('usage: cli.ts build | up --dir DIR | down --dir DIR');
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof MissingToolchainError ? `error: ${err.message}` : err);
  process.exit(1);
});
