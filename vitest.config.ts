import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Files run in parallel, but at most two at once: each end-to-end file drives a real Tomcat,
    // and the machines here have two cores.
    maxWorkers: 2,
  },
});
