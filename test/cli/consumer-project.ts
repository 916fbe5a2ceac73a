// A project that installed espresso, for tests of the package as users get it: its
// node_modules/espresso is this repository (package.json "exports" to the built dist/), so a
// script can import 'espresso' and a TypeScript file can be checked against the shipped declarations.

import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const root = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);

export interface ConsumerProject {
  readonly dir: string;
  /** Runs an ES module written with `lines`; its stdout. */
  runScript(file: string, lines: readonly string[]): Promise<string>;
  /** Type-checks a file written with `lines` (strict, NodeNext); tsc's complaints, '' when none. */
  typeCheck(file: string, lines: readonly string[]): Promise<string>;
  remove(): void;
}

export function consumerProject(prefix: string): ConsumerProject {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'espresso'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
  return {
    dir,
    runScript: async (file, lines) => {
      writeFileSync(join(dir, file), lines.join('\n'));
      return (await run(process.execPath, [file], { cwd: dir, timeout: 60_000 })).stdout;
    },
    typeCheck: async (file, lines) => {
      // A Node project has @types/node (amqplib's declarations, which the SDK's name, need it).
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: {
          module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true,
          typeRoots: [join(root, 'node_modules', '@types')], types: ['node'],
        },
        files: [file],
      }));
      writeFileSync(join(dir, file), lines.join('\n'));
      const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      return run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir }).then(() => '', (e: { stdout?: string }) => e.stdout ?? String(e));
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
