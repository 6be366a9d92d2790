// Gzipped size of what a host loads for each entry point: the entry file and every chunk it
// imports, minified as built (`npm run build` first). The README quotes these numbers.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

function closure(file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  const code = readFileSync(file, 'utf8');
  for (const [, spec] of code.matchAll(/(?:import|export)[^'"]*?from\s*["'](\.[^"']+)["']|import\s*["'](\.[^"']+)["']/g)) {
    if (spec) closure(join(dirname(file), spec), seen);
  }
  return seen;
}

for (const [name, entry] of [
  ['@longtasks/ui (element, client, store)', 'dist/index.js'],
  ['@longtasks/ui/react (bindings, with the element)', 'dist/react.js'],
]) {
  const files = [...closure(entry)];
  const raw = files.reduce((n, f) => n + readFileSync(f).length, 0);
  const gz = files.reduce((n, f) => n + gzipSync(readFileSync(f), { level: 9 }).length, 0);
  console.log(`${name}: ${(raw / 1024).toFixed(1)} kB min, ${(gz / 1024).toFixed(1)} kB gzip (${files.length} files)`);
}
