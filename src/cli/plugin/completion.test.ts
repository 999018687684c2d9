import { describe, expect, it } from 'vitest';
import { complete, DIRECTIVE, formatCompletion, type NameSource } from './completion.ts';
import type { ConnectionFlags } from './session.ts';

/** Names as a cluster would give them, recording which connection flags each lookup was asked with. */
function source(asked: ConnectionFlags[] = []): (c: ConnectionFlags) => NameSource {
  return (c) => {
    asked.push(c);
    return {
      apiKeys: () => Promise.resolve(['ci', 'ci-reader', 'dashboard']),
      deployments: () => Promise.resolve(['airflow', 'billing']),
      namespaces: () => Promise.resolve(['default', 'team-a']),
      contexts: () => Promise.resolve(['dev', 'prod']),
    };
  };
}

const candidates = async (...words: string[]) => (await complete(words, source())).candidates.map((c) => c.split('\t')[0]);

describe('shell completion (cobra __complete protocol)', () => {
  it.each([
    [[''], ['create', 'list', 'describe', 'rotate', 'delete', 'token', 'deployments', 'console', 'migrate', 'version']],
    [['de'], ['describe', 'delete', 'deployments']],
    [['-n', 'team-a', 'ro'], ['rotate']],
    [['describe', ''], ['ci', 'ci-reader', 'dashboard']],
    [['describe', 'ci'], ['ci', 'ci-reader']],
    [['describe', 'ci', ''], []],
    [['delete', 'ci', ''], ['ci-reader', 'dashboard']],
    [['token', '--scope', 'read', 'da'], ['dashboard']],
    [['list', ''], []],
    [['create', 'x', '--deployment', ''], ['airflow', 'billing']],
    [['create', 'x', '--deployment=b'], ['--deployment=billing']],
    [['create', 'x', '--permissions', ''], ['deploy', 'read', 'deploy,read']],
    [['create', 'x', '--dry-run', ''], ['client', 'none']],
    [['list', '-o', ''], ['json', 'yaml', 'name', 'wide', 'jsonpath=']],
    [['describe', 'ci', '-o', ''], ['json', 'yaml', 'jsonpath=']],
    [['list', '--output=y'], ['--output=yaml']],
    [['list', '-n', ''], ['default', 'team-a']],
    [['list', '--context', 'p'], ['prod']],
    [['list', '--no-h'], ['--no-headers']],
    [['delete', '--a'], ['--all']],
    [['frobnicate', ''], []],
  ])('%j offers %j', async (words, expected) => {
    expect(await candidates(...words)).toEqual(expected);
  });

  it('offers every flag of the command, with descriptions, and short ones after a lone dash', async () => {
    const long = (await complete(['rotate', '--'], source())).candidates;
    for (const flag of ['--wait', '--no-wait', '--show-secret', '--timeout', '--namespace', '--kubeconfig', '--context']) {
      expect(long.find((c) => c.startsWith(`${flag}\t`))?.split('\t')[1], flag).toMatch(/\w/);
    }
    expect(await candidates('list', '-')).toEqual(expect.arrayContaining(['-o', '-A', '-n', '-l', '--selector']));
  });

  it('looks names up with the namespace, kubeconfig and context of the words, in any of their forms', async () => {
    const asked: ConnectionFlags[] = [];
    await complete(['--kubeconfig=/k', 'describe', '-n', 'team-a', '--context', 'prod', ''], source(asked));
    expect(asked).toEqual([{ kubeconfig: '/k', namespace: 'team-a', context: 'prod' }]);
  });

  it('turns file completion off, except for --kubeconfig, and asks for no space after jsonpath=', async () => {
    expect((await complete(['li'], source())).directive).toBe(DIRECTIVE.noFileComp);
    expect((await complete(['list', '--kubeconfig', ''], source())).directive).toBe(DIRECTIVE.default);
    expect((await complete(['list', '-o', 'jsonp'], source())).directive).toBe(DIRECTIVE.noFileComp | DIRECTIVE.noSpace);
  });

  it('prints one candidate a line, then the directive line', () => {
    expect(formatCompletion({ candidates: ['a\thelp', 'b'], directive: 4 })).toBe('a\thelp\nb\n:4\n');
    expect(formatCompletion({ candidates: [], directive: 1 })).toBe(':1\n');
  });
});

describe('formatCompletion', () => {
  it('leaves out a candidate with a control character, which the shell would print or run', () => {
    expect(formatCompletion({ candidates: ['prod', 'evil\x1b]0;x\x07', 'a\nb', 'café'], directive: DIRECTIVE.noFileComp }))
      .toBe(`prod\ncafé\n:${DIRECTIVE.noFileComp}\n`);
  });
});
