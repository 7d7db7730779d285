#!/usr/bin/env node
// Runs the TypeScript sources directly, so `npm ci` (with or without dev dependencies) is the
// whole install: no build step, no compiled copy to drift from the sources.
import { register } from "tsx/esm/api";

register();
await import("./cli.ts");
