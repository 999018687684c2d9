import { describe, expect, it } from 'vitest';
import { parseCommandLine } from './command.ts';
import { createCommand } from './commands/create.ts';
import { listCommand } from './commands/list.ts';
import { rotateCommand } from './commands/rotate.ts';
import { PluginUsageError } from '../../client/errors.ts';
import { splitCommand } from './index.ts';

describe('splitCommand finds the command word among kubectl\'s flags', () => {
  it.each([
    [['list'], 'list', []],
    [['-n', 'team-a', 'list', '-o', 'yaml'], 'list', ['-n', 'team-a', '-o', 'yaml']],
    [['--kubeconfig', '/k', '--context', 'c', 'create', 'ci'], 'create', ['--kubeconfig', '/k', '--context', 'c', 'ci']],
    [['--namespace=x', 'delete', 'ci', '--yes'], 'delete', ['--namespace=x', 'ci', '--yes']],
    [['-A'], undefined, ['-A']],
  ])('%j', (argv, word, rest) => {
    expect(splitCommand(argv)).toEqual({ word, rest });
  });
});

describe('parseCommandLine', () => {
  it('reads kubectl\'s flags in long, short and = forms, and the command\'s own', () => {
    const r = parseCommandLine(createCommand, ['ci', '-nteam-a', '--deployment=airflow', '-o', 'json', '--context', 'c']);
    expect(r.positionals).toEqual(['ci']);
    expect(r.values).toMatchObject({ namespace: 'team-a', deployment: 'airflow', output: 'json', context: 'c' });
    expect(parseCommandLine(listCommand, ['-A']).values['all-namespaces']).toBe(true);
    expect(parseCommandLine(rotateCommand, ['ci', '--no-wait']).values.wait).toBe(false);
  });

  it.each([
    [createCommand, ['ci', '--bogus'], /unknown flag --bogus/],
    [createCommand, [], /create needs NAME/],
    [createCommand, ['a', 'b'], /unexpected argument "b"/],
    [listCommand, ['--namespace'], /flag --namespace needs a value/],
    [listCommand, ['-A=yes'], /./],
    [listCommand, ['--no-all-namespaces'], /unknown flag --no-all-namespaces/],
    [createCommand, ['ci', '--deployment', ''], /--deployment needs a value/],
  ])('refuses %s %j', (cmd, args, message) => {
    expect(() => parseCommandLine(cmd, args)).toThrow(PluginUsageError);
    expect(() => parseCommandLine(cmd, args)).toThrow(message);
  });

  it('lets --help through whatever else is wrong', () => {
    expect(parseCommandLine(createCommand, ['--help']).values.help).toBe(true);
  });
});
