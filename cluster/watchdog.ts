// A detached process that cleans up after a test process that died before it could: it reads
// '+pid' / '-pid' (processes to kill), 'n<name>' (network namespaces) and 'l<name>' (links) lines
// on its stdin and, when stdin closes (its parent is gone), kills the pids and deletes the rest.

import { spawn, type ChildProcess } from 'node:child_process';

export function startWatchdog(): ChildProcess {
  const script = `
    const { spawnSync } = require('node:child_process');
    const pids = new Set(); const ns = []; const links = []; let buf = '';
    process.stdin.on('data', (d) => { buf += d; let i;
      while ((i = buf.indexOf('\\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1);
        const [op, arg] = [l[0], l.slice(1)];
        if (op === '+') pids.add(Number(arg)); else if (op === '-') pids.delete(Number(arg));
        else if (op === 'n') ns.push(arg); else if (op === 'l') links.push(arg); } });
    process.stdin.on('end', () => {
      for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch {} }
      for (const n of ns) spawnSync('ip', ['netns', 'del', n], { timeout: 10000 });
      for (const l of links) spawnSync('ip', ['link', 'del', l], { timeout: 10000 });
      process.exit(0); });`;
  const dog = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  dog.unref();
  (dog.stdin as unknown as { unref?: () => void }).unref?.();
  return dog;
}
