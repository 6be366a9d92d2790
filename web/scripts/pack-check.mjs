// `npm pack --dry-run`: the tarball must hold both entry points, their types, and nothing from
// the sources or tests. Fails (exit 1) with what is missing or stray.
import { execFileSync } from 'node:child_process';

const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--loglevel=error'], { encoding: 'utf8' }));
const files = new Set(pack.files.map((f) => f.path));
const required = ['package.json', 'dist/index.js', 'dist/react.js', 'dist/types/index.d.ts', 'dist/types/react/index.d.ts'];
const missing = required.filter((f) => !files.has(f));
const stray = [...files].filter((f) => !(f === 'package.json' || f.startsWith('dist/') || /^(README|LICENSE)/i.test(f)));
if (missing.length || stray.length) {
  console.error(`npm pack: missing ${JSON.stringify(missing)}, stray ${JSON.stringify(stray)}`);
  process.exit(1);
}
console.log(`npm pack: ${pack.filename}, ${files.size} files, ${pack.size} bytes packed; both entry points with types`);
