// --watch: a rolling reload whenever a file of the app changes, one per burst of changes.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ERR_INVALID_OPTION } from '../errors.ts';
import type { ServiceProxy } from '../main/service-proxy.ts';
import type { WorkerView } from '../main/worker-view.ts';

/** Left out below every watched directory, as are directories (and files) whose names start with '.'. */
export const UNWATCHED_DIRECTORIES: readonly string[] = ['node_modules', 'dist', 'build', 'out', 'coverage'];
/** A burst of changes (an editor's save, a git checkout) is over once the tree is quiet this long. */
const QUIET_MS = 100;
/** A tree that never goes quiet (a build writing into it) still reloads this long after its first change. */
const MAX_DELAY_MS = 1_000;
/** Files that `node --check` can point a syntax error to. */
const CHECKABLE = /\.[cm]?[jt]s$/;
const CHECK_TIMEOUT_MS = 10_000;
/** socketnaut's own files, whose frames in an app's stack say nothing about the app. */
const OWN_FILES = new URL('..', import.meta.url).href;

export interface WatchSettings {
  /** Absolute paths of the directories watched, each with its tree. */
  roots: readonly string[];
  proxy: ServiceProxy;
  reload(): Promise<void>;
  /** Where the line about each reload goes. */
  report(line: string): void;
}

export interface AppWatcher {
  close(): void;
}

/** The directories to watch: those of `watchPath`, each of which must exist, or else the app module's. */
export function watchRoots(appPath: string, watchPath: readonly string[] | undefined): string[] {
  if (!watchPath) return [path.dirname(appPath)];
  return watchPath.map((dir, i) => {
    const resolved = path.resolve(dir);
    if (!isDirectory(resolved))
      throw new ERR_INVALID_OPTION(`watchPath[${i}]`, 'a directory', `'${resolved}', which is not one`);
    return resolved;
  });
}

/** Editors' swap and backup files, and whatever lies in a directory left out. */
function ignored(relative: string): boolean {
  const names = relative.split(path.sep);
  const name = names.at(-1) ?? '';
  // Vim writes '4913' to find out whether it may write in a directory.
  return (
    names.some((part) => part.startsWith('.') || UNWATCHED_DIRECTORIES.includes(part)) ||
    name.endsWith('~') ||
    name === '4913'
  );
}

function isDirectory(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Watches `root` and its tree. Node's recursive watch on Linux walks the whole tree and watches every
 * file in it, so each subdirectory that is not left out gets a recursive watch of its own and the root
 * a shallow one: node_modules and .git are never walked.
 */
function watchTree(root: string, onChange: (file: string) => void, report: (line: string) => void): () => void {
  const subtrees = new Map<string, fs.FSWatcher>();
  const unwatch = (dir: string): void => {
    subtrees.get(dir)?.close();
    subtrees.delete(dir);
  };
  const watchSubtree = (dir: string): void => {
    try {
      const watcher = fs.watch(dir, { recursive: true }, (_event, name) => {
        const relative = name && path.join(path.basename(dir), name);
        if (relative && !ignored(relative)) onChange(path.join(root, relative));
      });
      // A directory removed, or replaced by a checkout: the root's watch sees it come back.
      watcher.on('error', () => unwatch(dir));
      subtrees.set(dir, watcher);
    } catch (err) {
      report(`cannot watch ${dir}: ${(err as Error).message}`);
    }
  };
  const top = fs.watch(root, (_event, name) => {
    if (!name || ignored(name)) return;
    const file = path.join(root, name);
    const directory = isDirectory(file);
    if (directory && !subtrees.has(file)) watchSubtree(file);
    else if (!directory && subtrees.has(file)) unwatch(file);
    onChange(file);
  });
  top.on('error', (err) => report(`stopped watching ${root}: ${err.message}`));
  for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
    if (entry.isDirectory() && !ignored(entry.name)) watchSubtree(path.join(root, entry.name));
  }
  return () => {
    top.close();
    for (const dir of [...subtrees.keys()]) unwatch(dir);
  };
}

/** The files the launcher's own stdout and stderr go to, if any: writing a line there is no change of the app. */
function outputFiles(): Set<string> {
  const files = new Set<string>();
  for (const fd of [1, 2]) {
    try {
      const stat = fs.fstatSync(fd);
      if (stat.isFile()) files.add(`${stat.dev}:${stat.ino}`);
    } catch {
      // Closed: nothing is written there.
    }
  }
  return files;
}

function fileId(file: string): string {
  try {
    const stat = fs.statSync(file);
    return `${stat.dev}:${stat.ino}`;
  } catch {
    return '';
  }
}

function shown(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

function describeChanges(files: readonly string[]): string {
  const first = shown(files[0]!);
  return files.length === 1 ? `${first} changed` : `${first} and ${files.length - 1} more changed`;
}

/** Where a syntax error is, as Node itself prints it ('file:line', the line, a caret, the error); undefined if none is found. */
async function locateSyntaxError(files: readonly string[]): Promise<string | undefined> {
  for (const file of files.filter((file) => CHECKABLE.test(file) && fs.existsSync(file))) {
    const stderr = await new Promise<string>((resolve) => {
      execFile(process.execPath, ['--check', file], { timeout: CHECK_TIMEOUT_MS }, (err, _stdout, output) =>
        resolve(err ? output : ''),
      );
    });
    const lines = stderr.split('\n');
    const end = lines.findIndex((line) => /^\s+at /.test(line));
    const text = lines
      .slice(0, end === -1 ? undefined : end)
      .join('\n')
      .trim();
    if (/SyntaxError/.test(text)) return text;
  }
  return undefined;
}

type LoadError = NonNullable<WorkerView['error']>;

/** The error of a module that failed to load, with the file and line it failed at. */
async function describeLoadError(error: LoadError | Error, files: readonly string[]): Promise<string> {
  if (error.name === 'SyntaxError') {
    // The error of a module that cannot be parsed carries no location: Node's own check finds it.
    const located = await locateSyntaxError(files);
    if (located) return located;
  }
  const stack = error.stack ?? `${error.name}: ${error.message}`;
  return stack
    .split('\n')
    .filter((line) => !(/^\s+at /.test(line) && (line.includes('node:internal/') || line.includes(OWN_FILES))))
    .join('\n');
}

/** Watches the app's files and reloads the workers after each burst of changes; at most one reload at a time. */
export function watchApp(settings: WatchSettings): AppWatcher {
  const { proxy, report } = settings;
  const changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let firstChangeAt: number | undefined;
  let reloading = false;
  let closed = false;

  const schedule = (): void => {
    const now = performance.now();
    firstChangeAt ??= now;
    clearTimeout(timer);
    timer = setTimeout(
      () => void reload(),
      Math.min(QUIET_MS, Math.max(0, firstChangeAt + MAX_DELAY_MS - now)),
    ).unref();
  };

  const ownOutput = outputFiles();
  const onChange = (file: string): void => {
    if (closed || (ownOutput.size > 0 && ownOutput.has(fileId(file)))) return;
    changed.add(file);
    // A change during a reload gets a reload of its own once this one is over.
    if (!reloading) schedule();
  };

  const reload = async (): Promise<void> => {
    timer = undefined;
    firstChangeAt = undefined;
    const files = [...changed];
    changed.clear();
    reloading = true;
    const failures: LoadError[] = [];
    const onExit = (agent: WorkerView): void => {
      if (agent.readyAt === 0 && agent.error) failures.push(agent.error);
    };
    proxy.on('worker-exit', onExit);
    const started = performance.now();
    try {
      await settings.reload();
      if (!closed) report(`${describeChanges(files)}; reloaded in ${Math.round(performance.now() - started)} ms`);
    } catch (err) {
      const detail = await describeLoadError(failures[0] ?? (err as Error), files);
      if (!closed)
        report(
          `${describeChanges(files)}, but the new code failed to load; the old workers keep serving. Waiting for the next change:\n${detail}`,
        );
    } finally {
      proxy.off('worker-exit', onExit);
      reloading = false;
      if (changed.size > 0 && !closed) schedule();
    }
  };

  const stops: (() => void)[] = [];
  try {
    for (const root of settings.roots) stops.push(watchTree(root, onChange, report));
  } catch (err) {
    for (const stop of stops) stop();
    throw err;
  }
  return {
    close: () => {
      closed = true;
      clearTimeout(timer);
      for (const stop of stops) stop();
    },
  };
}
