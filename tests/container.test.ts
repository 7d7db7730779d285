/**
 * No container engine runs here, so this checks what can be checked without one: the Containerfile
 * copies only paths that exist, its runtime stage is what an operator expects, and the runtime
 * stage's file layout, installed with `npm ci --omit=dev` alone, runs `--help`, `migrate` and
 * `serve` (as the image's non-root user when the tests run as root) and passes the image's own
 * HEALTHCHECK command.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, cp, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, waitForHttp } from "./support/cli.ts";
import { scratchDatabase } from "./support/db.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

type Instruction = { keyword: string; args: string };
type Stage = { name?: string; from: string; instructions: Instruction[] };

/** Instructions by stage, continuation lines joined, comments dropped. */
function parseContainerfile(text: string): Stage[] {
  const logical = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"));
  const stages: Stage[] = [];
  for (const line of logical) {
    const [keyword = "", ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    if (keyword.toUpperCase() === "FROM") {
      const [from = "", , name] = args.split(/\s+/);
      stages.push({ from, name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

type Copy = { from?: string; sources: string[]; destination: string };

function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((instruction) => instruction.keyword === "COPY")
    .map((instruction) => {
      const words = instruction.args.split(/\s+/);
      const from = words.find((word) => word.startsWith("--from="))?.slice("--from=".length);
      const paths = words.filter((word) => !word.startsWith("--"));
      return { from, sources: paths.slice(0, -1), destination: paths.at(-1) ?? "" };
    });
}

/** Where each source of a COPY lands inside the image, relative to the stage's WORKDIR. */
function landings(copy: Copy, workdir: string): { source: string; target: string }[] {
  const intoDirectory = copy.destination.endsWith("/") || copy.sources.length > 1;
  return copy.sources.map((source) => {
    const target = intoDirectory ? posix.join(copy.destination, basename(source)) : copy.destination;
    return { source, target: posix.resolve(workdir, target) };
  });
}

const workdirOf = (stage: Stage) =>
  stage.instructions.filter((instruction) => instruction.keyword === "WORKDIR").at(-1)?.args ?? "/";
const argsOf = (stage: Stage, keyword: string) =>
  stage.instructions.filter((instruction) => instruction.keyword === keyword).map((i) => i.args);

const stages = parseContainerfile(await readFile(join(root, "Containerfile"), "utf8"));
const runtime = stages.at(-1) as Stage;

describe("Containerfile", () => {
  it("copies only paths that exist, into the build stage and from it", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const built = new Map<string, Set<string>>();
    for (const stage of stages) {
      const landed = new Set<string>();
      for (const copy of copies(stage)) {
        for (const { source, target } of landings(copy, workdirOf(stage))) {
          if (copy.from) {
            const fromStage = built.get(copy.from);
            expect(fromStage, `stage ${copy.from}`).toBeDefined();
            expect([...(fromStage ?? [])], `COPY --from=${copy.from} ${source}`).toContain(source);
          } else {
            expect(existsSync(join(root, source)), `COPY ${source}`).toBe(true);
          }
          landed.add(target);
        }
      }
      if (stage.name) built.set(stage.name, landed);
    }
  });

  it("builds a Node 20 slim runtime with production dependencies, migrations, a non-root user", () => {
    expect(runtime.from).toMatch(/node:20-slim$/);
    expect(argsOf(runtime, "RUN").join("\n")).toContain("npm ci --omit=dev");
    const landed = copies(runtime).flatMap((copy) => landings(copy, workdirOf(runtime)));
    expect(landed.map((entry) => entry.target)).toEqual(
      expect.arrayContaining(["/opt/picasso/db", "/opt/picasso/app", "/opt/picasso/bin"]),
    );
    expect(existsSync(join(root, "db/migrations/meta/_journal.json"))).toBe(true);
    const user = argsOf(runtime, "USER").at(-1) ?? "root";
    expect(user.split(":")[0]).not.toMatch(/^(root|0)$/);
    expect(argsOf(runtime, "EXPOSE")).toContain("10001");
    expect(argsOf(runtime, "HEALTHCHECK").join(" ")).toContain("/healthcheck");
    expect(argsOf(runtime, "ENTRYPOINT")).toEqual(['["picasso-api"]']);
    expect(argsOf(runtime, "CMD")).toEqual(['["serve"]']);
  });

  it("keeps the example environment file to known options, with no real secret", async () => {
    const example = await readFile(join(root, "Containerfile.env.example"), "utf8");
    const config = await readFile(join(root, "app/config.ts"), "utf8");
    for (const line of example.split("\n").filter((text) => text && !text.startsWith("#"))) {
      const name = line.split("=")[0] ?? "";
      expect(config, `${name} is an option`).toContain(`env: "${name}"`);
    }
    expect(example).toContain("CHANGE_ME");
  });
});

/** The HEALTHCHECK's exec-form command, e.g. ["node", "-e", "..."]. */
function healthcheckCommand(): string[] {
  const args = argsOf(runtime, "HEALTHCHECK").at(-1) ?? "";
  const json = args.slice(args.indexOf("CMD") + 3).trim();
  return JSON.parse(json) as string[];
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; uid?: number },
) {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.uid !== undefined && { uid: options.uid, gid: options.uid }),
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exited, output: () => output };
}

describe("the runtime stage's layout, installed with npm ci --omit=dev", () => {
  let image: string;
  let entrypoint: string;
  const cleanups: (() => Promise<unknown>)[] = [];
  const running: ChildProcess[] = [];
  // The image runs as uid 1000; as root we can do the same, proving it needs no write access.
  const uid = process.getuid?.() === 0 ? 1000 : undefined;
  const env = { NODE_ENV: "production", HOME: "/tmp" };

  beforeAll(async () => {
    image = await mkdtemp(join(tmpdir(), "picasso-image-"));
    cleanups.push(() => rm(image, { recursive: true, force: true }));
    await chmod(image, 0o755);
    const workdir = workdirOf(runtime);
    for (const copy of copies(runtime).filter((entry) => !entry.from)) {
      for (const { source, target } of landings(copy, workdir)) {
        await cp(join(root, source), join(image, posix.relative(workdir, target)), { recursive: true });
      }
    }
    const install = run("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline"], {
      cwd: image,
      env: {
        ...env,
        npm_config_cache: process.env.npm_config_cache ?? join(process.env.HOME ?? "/root", ".npm"),
      },
    });
    expect(await install.exited, install.output()).toBe(0);
    for (const copy of copies(runtime).filter((entry) => entry.from)) {
      for (const { source, target } of landings(copy, workdir)) {
        // The build stage copied these from the repository unchanged (first test).
        const fromRepository = posix.relative(workdirOf(stages[0] as Stage), source);
        await cp(join(root, fromRepository), join(image, posix.relative(workdir, target)), {
          recursive: true,
        });
      }
    }
    // `RUN ln -s .../bin/picasso-api.mjs /usr/local/bin/picasso-api`: run it through a symlink too.
    entrypoint = join(image, "picasso-api");
    await symlink(join(image, "bin/picasso-api.mjs"), entrypoint);
  }, 180_000);

  afterAll(async () => {
    for (const child of running) if (child.exitCode === null) child.kill("SIGKILL");
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it("has no development dependency installed", () => {
    for (const dev of ["typescript", "vitest", "playwright-core", "@biomejs/biome", "drizzle-kit"]) {
      expect(existsSync(join(image, "node_modules", dev)), dev).toBe(false);
    }
    expect(existsSync(join(image, "node_modules", "tsx"))).toBe(true);
  });

  it("runs the entrypoint: --help, migrate, serve, and the HEALTHCHECK passes", async () => {
    const help = run(entrypoint, ["--help"], { cwd: "/", env, uid });
    expect(await help.exited, help.output()).toBe(0);
    expect(help.output()).toContain("migrate");

    const scratch = await scratchDatabase();
    cleanups.push(scratch.drop);
    const migrate = run(entrypoint, ["migrate", "--db-uri", scratch.uri], { cwd: "/", env, uid });
    expect(await migrate.exited, migrate.output()).toBe(0);
    expect(migrate.output()).toContain("database schema is current");

    const port = await freePort();
    const [command = "", ...commandArgs] = healthcheckCommand();
    const healthcheck = async () =>
      run(command, commandArgs, { cwd: "/", env: { ...env, PICASSO_PORT: String(port) }, uid }).exited;
    expect(await healthcheck()).not.toBe(0);

    const serve = run(entrypoint, ["serve"], {
      cwd: "/",
      env: {
        ...env,
        PICASSO_DB: scratch.uri,
        PICASSO_PORT: String(port),
        PICASSO_HOST: "127.0.0.1",
        // Keystone need not answer for the service to start and pass its HEALTHCHECK.
        KEYSTONE_ENDPOINT: `http://127.0.0.1:${await freePort()}/v3`,
      },
      uid,
    });
    running.push(serve.child);
    await waitForHttp(`http://127.0.0.1:${port}/healthcheck`);
    expect(await healthcheck()).toBe(0);
    serve.child.kill("SIGTERM");
    expect(await serve.exited, serve.output()).toBe(0);
  });
});
