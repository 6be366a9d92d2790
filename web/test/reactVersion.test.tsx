// Which React the bindings' tests ran on: the react18 project must really load React 18.
import { version } from 'react';
import { expect, it } from 'vitest';

it('runs on the React its project names', ({ task }) => {
  const project = task.file.projectName;
  expect(['react18', 'react19']).toContain(project);
  expect(version.split('.')[0]).toBe(project === 'react18' ? '18' : '19');
});
