// Two runs of the suite: everything on React 19 (web's own dev dependency), and the React
// bindings' tests again on React 18 (test/react18 holds it), since hosts run either.
import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

const react18 = resolve(import.meta.dirname, 'test/react18/node_modules');
// Testing Library's ES module build, whose `import 'react-dom'` the aliases below can reach
// (its CommonJS build would `require` web's React 19).
const testingLibrary = resolve(import.meta.dirname, 'node_modules/@testing-library/react/dist/@testing-library/react.esm.js');

export default defineConfig({
  test: {
    environment: 'jsdom',
    setupFiles: ['test/setup.ts'],
    projects: [
      { extends: true, test: { name: 'react19', include: ['test/**/*.test.{ts,tsx}'] } },
      {
        extends: true,
        test: {
          name: 'react18',
          include: ['test/**/*.test.tsx'],
          // Bundle Testing Library through Vite, so its `react-dom` is the aliased one too.
          server: { deps: { inline: [/@testing-library\/react/] } },
        },
        resolve: {
          alias: [
            { find: /^@testing-library\/react$/, replacement: testingLibrary },
            { find: /^react-dom(\/.*)?$/, replacement: `${react18}/react-dom$1` },
            { find: /^react(\/.*)?$/, replacement: `${react18}/react$1` },
          ],
        },
      },
    ],
  },
});
