import { defineConfig } from "vite";

// A static bundle: the gateway (locally) or an nginx image (Kubernetes) serves it
// from the same origin as the APIs, so nothing is fetched from elsewhere.
export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
});
