import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // The end-to-end suite drives one real Tomcat per file; keep files from fighting over CPU.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
