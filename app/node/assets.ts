import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { AssetSource } from "../types.ts";

const contentTypes: Record<string, string> = {
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".png": "image/png",
  ".html": "text/html; charset=utf-8",
};

/** Swagger UI's files, read from the installed swagger-ui-dist package and kept in memory. */
export function swaggerUiAssets(): AssetSource {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve("swagger-ui-dist/package.json"));
  const allowed = new Set([
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
  ]);
  const cache = new Map<string, { body: Uint8Array; contentType: string }>();
  return async function readSwaggerUiAsset(name) {
    if (!allowed.has(name)) return null;
    const cached = cache.get(name);
    if (cached) return cached;
    const extension = name.slice(name.lastIndexOf("."));
    const asset = {
      body: new Uint8Array(await readFile(join(root, name))),
      contentType: contentTypes[extension] ?? "application/octet-stream",
    };
    cache.set(name, asset);
    return asset;
  };
}
