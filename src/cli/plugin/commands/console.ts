/**
 * `kubectl apikey console`: the web console on this machine, with the
 * person's own kubeconfig credentials. Prints the one-time sign-in URL on
 * stdout, opens a browser unless --no-open, and runs until Ctrl-C.
 */
import { stringFlag, type CommandDef, type Invocation } from '../command.ts';
import { PluginUsageError } from '../../../client/errors.ts';
import { TOKEN_URL_ENV, tokenEndpoint } from '../../../client/oauth.ts';

async function consoleCommand(inv: Invocation): Promise<number> {
  const portText = stringFlag(inv.values, 'port') ?? '0';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new PluginUsageError(`--port must be a port number from 0 to 65535 (got "${portText}")`);
  const given = stringFlag(inv.values, 'token-url') ?? (process.env[TOKEN_URL_ENV] || undefined);
  const tokenUrl = given === undefined ? undefined : tokenEndpoint(given, stringFlag(inv.values, 'token-url') ? '--token-url' : TOKEN_URL_ENV);
  const s = await inv.session();
  const { LocalSignIn } = await import('../../../console/local.ts');
  const { runConsole } = await import('../../../console/main.ts');
  await runConsole({
    signIn: new LocalSignIn({ kc: s.kc, defaultNamespace: s.namespace }),
    host: '127.0.0.1', port, tokenUrl, open: inv.values.open !== false,
  });
  return 0;
}

export const consoleCommandDef: CommandDef = {
  name: 'console',
  summary: 'open the web console for API keys and temporary tokens, with your kubeconfig',
  description: [
    'Start the web console on 127.0.0.1 with your kubeconfig\'s credentials (context, exec plugins,',
    '--kubeconfig, --context): every call it makes to Kubernetes is made as you. It prints a sign-in URL',
    'that works once, opens it in a browser where one can be found, and runs until Ctrl-C.',
  ].join('\n'),
  usage: 'console [--port N] [--no-open] [flags]',
  positionals: { min: 0, max: 0, names: [] },
  flags: [
    { name: 'port', type: 'string', value: 'N', help: 'port on 127.0.0.1 (default: a free one)' },
    { name: 'open', type: 'boolean', defaultTrue: true, help: 'open the sign-in URL in a browser (default); --no-open only prints it' },
    { name: 'token-url', type: 'string', value: 'URL', help: `the token endpoint, for the curl of a new key and the Token page [${TOKEN_URL_ENV}]` },
  ],
  examples: [
    '# Open the console in your browser',
    'kubectl apikey console',
    '',
    '# On a fixed port, without opening a browser, with the token endpoint port-forwarded',
    'kubectl apikey console --port 8000 --no-open --token-url http://localhost:8080/oauth/token',
  ],
  run: consoleCommand,
};
