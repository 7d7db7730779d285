import { constants } from "node:fs";
import { access, readdir, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";
import { EngineError } from "../types.ts";

const executableName = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * The executable a route's `image` names: the last path segment without tag or digest, so
 * `hello`, `picasso/hello:0.1` and `registry:5000/team/hello@sha256:...` all run `<dir>/hello`.
 * Docker-style names keep working unchanged when a route moves between engines. Anything that
 * could point outside the directory (`..`, absolute paths, backslashes) is refused outright,
 * not reinterpreted.
 */
export function executableNameOf(image: string): string {
  const trimmed = image.trim();
  if (trimmed === "") throw invalidImage(image, "must not be empty");
  if (trimmed.startsWith("/") || isAbsolute(trimmed)) {
    throw invalidImage(image, "must be a name such as hello or picasso/hello:0.1, not an absolute path");
  }
  if (/[\\\0]/.test(trimmed) || trimmed.split("/").some((segment) => segment === ".." || segment === ".")) {
    throw invalidImage(image, "must not contain '.' or '..' segments, backslashes or NUL");
  }
  let name = trimmed;
  const digest = name.indexOf("@");
  if (digest >= 0) name = name.slice(0, digest);
  name = name.slice(name.lastIndexOf("/") + 1);
  const tag = name.indexOf(":");
  if (tag >= 0) name = name.slice(0, tag);
  if (!executableName.test(name)) {
    throw invalidImage(image, "must end in a file name of letters, digits, '.', '_' or '-'");
  }
  return name;
}

/**
 * Resolves `image` to an executable file inside `directory`, following symlinks only while they
 * stay inside it. Throws EngineError("invalid") naming the field otherwise.
 */
export async function resolveExecutable(directory: string, image: string): Promise<string> {
  const name = executableNameOf(image);
  const root = await realpath(directory);
  const candidate = join(root, name);
  let target: string;
  try {
    target = await realpath(candidate);
  } catch {
    throw invalidImage(
      image,
      `names no function of the functions directory: there is no ${name} (there is: ${await listFunctions(root)})`,
    );
  }
  const inside = relative(root, target);
  if (inside === "" || inside.startsWith(`..${sep}`) || inside === ".." || isAbsolute(inside)) {
    throw invalidImage(image, `resolves outside the functions directory (${name} is a link)`);
  }
  const info = await stat(target);
  if (!info.isFile()) throw invalidImage(image, `names ${name}, which is not a file`);
  try {
    await access(target, constants.X_OK);
  } catch {
    throw invalidImage(image, `names ${name}, which is not executable (chmod +x it)`);
  }
  return target;
}

/** For error messages: what a tenant could have meant. */
async function listFunctions(root: string): Promise<string> {
  try {
    const entries = await readdir(root, { withFileTypes: true });
    const names = entries
      .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && executableName.test(entry.name))
      .map((entry) => entry.name)
      .sort();
    return names.length > 0 ? names.slice(0, 20).join(", ") : "nothing";
  } catch {
    return "nothing readable";
  }
}

function invalidImage(image: string, problem: string): EngineError {
  // Named like the API's validation errors (`field: problem`): management answers 400 with it.
  return new EngineError("invalid", `image: ${JSON.stringify(image)} ${problem}`, 400);
}
