// The tarball `npm pack` makes, as a host gets it: it must hold both entry points and their
// types and nothing from the sources or tests; installed into an empty project (with React's
// types and TypeScript, at the versions this package is tested with, from npm's cache when it
// has them), a host file using both entry points must type-check under both module resolutions
// hosts use (`bundler`: Vite and friends; `nodenext`: Node's own ESM rules, which need explicit
// file extensions in the declarations), and a wrong prop must not. Fails (exit 1) with why.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HOST = `import { createApiClient, TASK_STATUSES, type Task } from '@longtasks/ui';
import { LongTaskStatusCard, taskCardProps, useLongTask, useLongTaskPersistence } from '@longtasks/ui/react';

export function Host({ taskId, token }: { taskId: number; token: string }) {
  const { task, cancel } = useLongTask(taskId, { baseUrl: 'https://tasks.example.com', token });
  const { activeTask } = useLongTaskPersistence(1, 'broadcast');
  const client = createApiClient({ getToken: () => token });
  const shown: Task | null = task;
  void client.getTask(taskId);
  void activeTask;
  void TASK_STATUSES;
  return shown ? <LongTaskStatusCard {...taskCardProps(shown)} onCancel={() => void cancel()} /> : null;
}

// @ts-expect-error progressPct is a number: the types must reach the host
export const wrong = <LongTaskStatusCard taskId={1} taskType="broadcast" status="running" total={1} processed={0} success={0} failed={0} progressPct="x" canCancel={false} />;
`;

function fail(message) {
  console.error(`npm pack: ${message}`);
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'longtasks-pack-'));
try {
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--json', '--loglevel=error', '--pack-destination', dir], { encoding: 'utf8' }));
  const files = new Set(pack.files.map((f) => f.path));
  const required = ['package.json', 'dist/index.js', 'dist/react.js', 'dist/types/index.d.ts', 'dist/types/react/index.d.ts'];
  const missing = required.filter((f) => !files.has(f));
  const stray = [...files].filter((f) => !(f === 'package.json' || f.startsWith('dist/') || /^(README|LICENSE)/i.test(f)));
  if (missing.length || stray.length) fail(`missing ${JSON.stringify(missing)}, stray ${JSON.stringify(stray)}`);

  const dev = JSON.parse(readFileSync('package.json', 'utf8')).devDependencies;
  const host = join(dir, 'host');
  mkdirSync(host);
  writeFileSync(join(host, 'package.json'), JSON.stringify({ name: 'pack-host', private: true, type: 'module' }));
  writeFileSync(join(host, 'host.tsx'), HOST);
  const deps = [join(dir, pack.filename), `react@${dev.react}`, `@types/react@${dev['@types/react']}`, `typescript@${dev.typescript}`];
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...deps], { cwd: host, stdio: ['ignore', 'ignore', 'inherit'] });
  for (const [module, resolution] of [
    ['esnext', 'bundler'],
    ['nodenext', 'nodenext'],
  ]) {
    const options = { strict: true, jsx: 'react-jsx', module, moduleResolution: resolution, target: 'es2022', lib: ['es2022', 'dom'], noEmit: true };
    writeFileSync(join(host, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files: ['host.tsx'] }));
    try {
      execFileSync(join(host, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: host, encoding: 'utf8' });
    } catch (err) {
      fail(`a host importing the tarball does not type-check (moduleResolution ${resolution}):\n${err.stdout}`);
    }
  }
  console.log(`npm pack: ${pack.filename}, ${files.size} files, ${pack.size} bytes packed; installed in an empty host, both entry points type-check (bundler, nodenext)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
