import { afterEach, describe, expect, it } from 'vitest';
import { CONSOLE_FLAGS, CONTROLLER_FLAGS, csv, intFlag, parseFlags, sizeFlag, TOKEN_SERVER_FLAGS, UsageError } from './options.ts';

afterEach(() => {
  delete process.env.APIKEY_OPERATOR_WORKERS;
  delete process.env.APIKEY_OPERATOR_NAMESPACE;
});

describe('program flags', () => {
  it('take a flag over its environment variable over the default', () => {
    expect(parseFlags([], CONTROLLER_FLAGS).workers).toBe('4');
    process.env.APIKEY_OPERATOR_WORKERS = '9';
    expect(parseFlags([], CONTROLLER_FLAGS).workers).toBe('9');
    expect(parseFlags(['--workers', '3'], CONTROLLER_FLAGS).workers).toBe('3');
  });

  it('read the operator namespace from APIKEY_OPERATOR_NAMESPACE', () => {
    process.env.APIKEY_OPERATOR_NAMESPACE = 'ops';
    expect(parseFlags([], TOKEN_SERVER_FLAGS)['operator-namespace']).toBe('ops');
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['positional'], /positional/],
    [['--leader-elect=maybe'], /must be true or false/],
  ])('refuse %j with a usage error', (argv, message) => {
    expect(() => parseFlags(argv, CONTROLLER_FLAGS)).toThrow(UsageError);
    expect(() => parseFlags(argv, CONTROLLER_FLAGS)).toThrow(message);
  });

  it('accept a bare boolean flag as true', () => {
    expect(parseFlags(['--leader-elect'], CONTROLLER_FLAGS)['leader-elect']).toBe('true');
    expect(parseFlags(['--leader-elect=false'], CONTROLLER_FLAGS)['leader-elect']).toBe('false');
  });

  it('split lists and check integer ranges', () => {
    expect(csv(' a, b,,c ')).toEqual(['a', 'b', 'c']);
    expect(intFlag('port', '8080', 0, 65535)).toBe(8080);
    expect(() => intFlag('port', '70000', 0, 65535)).toThrow('--port must be an integer from 0 to 65535');
    expect(() => intFlag('workers', '1.5', 1, 256)).toThrow(UsageError);
  });

  it('give the console variables of its own, except those it means the same by', () => {
    const others = new Map([...CONTROLLER_FLAGS, ...TOKEN_SERVER_FLAGS].map((f) => [f.env, f.name]));
    const shared = CONSOLE_FLAGS.filter((f) => others.has(f.env)).map((f) => f.env);
    // The kubeconfig, the log level, and the token URL (as people reach it, as the plugin reads it).
    expect(shared.sort()).toEqual(['APIKEY_OPERATOR_LOG_LEVEL', 'APIKEY_OPERATOR_TOKEN_URL', 'KUBECONFIG']);
  });
});

describe('--audit-log-maxsize', () => {
  it('takes megabytes as kube-apiserver does, or a Ki/Mi/Gi size', () => {
    expect(sizeFlag('audit-log-maxsize', '100')).toBe(100 * 1024 * 1024);
    expect(sizeFlag('audit-log-maxsize', '0')).toBe(0);
    expect(sizeFlag('audit-log-maxsize', '16Ki')).toBe(16 * 1024);
    expect(sizeFlag('audit-log-maxsize', '1Gi')).toBe(1024 ** 3);
    for (const bad of ['', '-1', '1.5', '10MB', '1e3', '9999999Gi']) expect(() => sizeFlag('audit-log-maxsize', bad)).toThrow(UsageError);
  });
});
