/**
 * Reads a Dockerfile and a .dockerignore the way `docker build` does, far enough to check the image
 * without a Docker engine: its stages and instructions, the files of its build context, and a
 * stage-by-stage reproduction of the build in a folder (COPY, ENV and RUN; each stage's WORKDIR is
 * a folder of its own; a RUN of apt-get, which installs the base image's system packages, is left to
 * the host, which must have them).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface Instruction { keyword: string; args: string }
export interface Stage { image: string; name?: string; instructions: Instruction[] }

/** Stages in order; line continuations joined, comments and parser directives dropped. */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) { pending += `${line.slice(0, -1)} `; continue; }
    const full = (pending + line).trim();
    pending = '';
    if (full) logical.push(full);
  }
  const stages: Stage[] = [];
  for (const l of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(l) ?? [];
    const instruction = { keyword: keyword.toUpperCase(), args };
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/);
      stages.push({ image, ...(as?.toUpperCase() === 'AS' && name ? { name } : {}), instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`${keyword} before the first FROM`);
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

export interface Copy { from?: string; sources: string[]; dest: string }

export function parseCopy(args: string): Copy {
  const words = args.split(/\s+/);
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
  const paths = words.filter((w) => !w.startsWith('--'));
  const dest = paths.pop();
  if (!dest || paths.length === 0) throw new Error(`COPY needs a source and a destination: ${args}`);
  return { ...(from ? { from } : {}), sources: paths, dest };
}

function patternRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? '';
    if (pattern.startsWith('**/', i)) { re += '(?:.*/)?'; i += 2; } else if (pattern.startsWith('**', i)) { re += '.*'; i += 1; } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export interface DockerIgnore {
  /** Whether `path` (relative, with /) stays out of the build context. */
  excludes(path: string): boolean;
  /** Exception patterns (`!x`), which may bring back files below an excluded folder. */
  exceptions: string[];
}

/** .dockerignore semantics: a pattern matches a path or one of its parents; the last match wins. */
export function parseDockerIgnore(text: string): DockerIgnore {
  const rules = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => {
    const exception = l.startsWith('!');
    const pattern = (exception ? l.slice(1) : l).trim().replace(/^\/+/, '').replace(/\/+$/, '');
    return { exception, pattern, re: patternRegExp(pattern) };
  });
  return {
    exceptions: rules.filter((r) => r.exception).map((r) => r.pattern),
    excludes(path: string): boolean {
      const parts = path.split('/');
      const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
      let excluded = false;
      for (const r of rules) {
        if (candidates.some((c) => r.re.test(c))) excluded = !r.exception;
      }
      return excluded;
    },
  };
}

/** Every file `docker build` would send from `root` (relative paths). */
export function contextFiles(root: string, ignore: DockerIgnore): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!ignore.excludes(path) || ignore.exceptions.some((e) => e.startsWith(`${path}/`))) walk(path);
      } else if (!ignore.excludes(path)) {
        out.push(path);
      }
    }
  };
  walk('');
  return out.sort();
}

export interface Reproduction { stageDir: (stage: Stage) => string; env: Record<string, string> }

/**
 * Runs the stages in `work`: COPY from the context (only files in `context`) or from an earlier
 * stage, ENV, and RUN with `sh -c` under `node` = this process's Node.js. Each stage's WORKDIR
 * (which must be absolute) is `work/<stage index>`.
 */
export async function reproduceBuild(stages: Stage[], root: string, context: string[], work: string,
  extraEnv: Record<string, string> = {}): Promise<Reproduction> {
  const dirs = new Map<Stage, string>();
  const workdirs = new Map<Stage, string>();
  const byName = (name: string): Stage => {
    const s = stages.find((x) => x.name === name) ?? stages[Number(name)];
    if (!s) throw new Error(`no stage ${name}`);
    return s;
  };
  let env: Record<string, string> = {};
  for (const [i, stage] of stages.entries()) {
    const dir = join(work, String(i));
    mkdirSync(dir, { recursive: true });
    dirs.set(stage, dir);
    env = {};
    for (const { keyword, args } of stage.instructions) {
      if (keyword === 'WORKDIR') {
        if (!args.startsWith('/')) throw new Error(`WORKDIR must be absolute: ${args}`);
        workdirs.set(stage, args);
      } else if (keyword === 'ENV') {
        for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1] ?? ''] = (m[2] ?? '').replace(/^"|"$/g, '');
      } else if (keyword === 'COPY') {
        const copy = parseCopy(args);
        const destDir = copy.dest.endsWith('/') || copy.sources.length > 1;
        for (const src of copy.sources) {
          const target = join(dir, copy.dest, destDir ? src.split('/').at(-1) ?? '' : '');
          if (copy.from !== undefined) {
            const from = byName(copy.from);
            const fromWorkdir = workdirs.get(from) ?? '/';
            const source = join(dirs.get(from) ?? '', relative(fromWorkdir, src));
            cpSync(source, target, { recursive: true, verbatimSymlinks: true });
          } else {
            const files = context.filter((f) => f === src || f.startsWith(`${src}/`));
            if (files.length === 0) throw new Error(`COPY ${src}: not in the build context`);
            for (const f of files) {
              const to = f === src ? target : join(target, f.slice(src.length + 1));
              mkdirSync(dirname(to), { recursive: true });
              cpSync(join(root, f), to);
            }
          }
        }
      } else if (keyword === 'RUN') {
        // The base image's system packages (apt-get) are the host's here: it must have them already.
        if (/^apt-get\s/.test(args)) continue;
        await exec('sh', ['-c', args], {
          cwd: dir, maxBuffer: 64 << 20,
          env: { ...process.env, ...env, ...extraEnv, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
        }).catch((err: unknown) => {
          const e = err as { stdout?: string; stderr?: string };
          throw new Error(`RUN ${args} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
        });
      }
    }
  }
  return { stageDir: (s) => dirs.get(s) ?? '', env };
}
