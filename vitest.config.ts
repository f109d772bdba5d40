import { defineConfig } from "vitest/config";

// Two projects: `unit` is pure logic (fakes allowed), `integration` runs against
// the real local stack (Kafka broker, etcd + kube-apiserver), started by its
// global setup when it is not already running.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["{operator,services,test}/**/*.test.ts"],
          exclude: ["**/node_modules/**", "test/integration/**"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // One broker and one API server on 2 cores: run files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
