import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import vue from '@vitejs/plugin-vue';

// Served at `/` by the embedded stack (frontend/dist), or from any static host: relative asset
// paths work in both.
export default defineConfig({
  base: './',
  plugins: [vue()],
  resolve: {
    alias: [
      {
        // The package maps its entry to a browser build only under a "browser" key Vite does not
        // match (`./dist-es/index` without `.js`); without this the Node providers (fs, os) leak in.
        find: /^@aws-sdk\/credential-providers$/,
        replacement: fileURLToPath(
          new URL('./node_modules/@aws-sdk/credential-providers/dist-es/index.browser.js', import.meta.url),
        ),
      },
    ],
  },
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 800,
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
