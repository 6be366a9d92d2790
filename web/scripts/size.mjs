// Gzipped size of what a host loads for each entry point: the entry file and every chunk it
// imports (`npm run build` first). Two figures: the files as shipped in dist/ (identifiers
// minified, whitespace kept, since a library's ES build must keep the pure annotations its host's
// tree-shaking needs), and the same minified whitespace and all by oxc (rolldown's minifier, what
// a host's production build does). The README quotes these numbers.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Buffer } from 'node:buffer';
import { gzipSync } from 'node:zlib';
import { minifySync } from 'rolldown/experimental';

function closure(file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  const code = readFileSync(file, 'utf8');
  for (const [, spec] of code.matchAll(/(?:import|export)[^'"]*?from\s*["'](\.[^"']+)["']|import\s*["'](\.[^"']+)["']/g)) {
    if (spec) closure(join(dirname(file), spec), seen);
  }
  return seen;
}

const kB = (n) => `${(n / 1000).toFixed(1)} kB`;
const gz = (code) => gzipSync(code, { level: 9 }).length;

for (const [name, entry] of [
  ['@longtasks/ui (element, client, store)', 'dist/index.js'],
  ['@longtasks/ui/react (bindings, with the element)', 'dist/react.js'],
]) {
  const files = [...closure(entry)];
  const shipped = files.map((f) => readFileSync(f, 'utf8'));
  const minified = files.map((f, i) => {
    const result = minifySync(f, shipped[i] ?? '', { module: true });
    if (result.errors.length) throw new Error(`${f}: ${JSON.stringify(result.errors)}`);
    return result.code;
  });
  const sum = (list, size) => list.reduce((n, code) => n + size(code), 0);
  console.log(
    `${name} (${files.length} files): shipped ${kB(sum(shipped, Buffer.byteLength))}, gzip ${kB(sum(shipped, gz))}; ` +
      `minified ${kB(sum(minified, Buffer.byteLength))}, gzip ${kB(sum(minified, gz))}`,
  );
}
