#!/usr/bin/env node
// Regenerates src/generated/openapi.ts from the service's OpenAPI document.
//
//   npm run generate                          # dump it from the code (uv run, repo root)
//   npm run generate -- --url http://127.0.0.1:8000/openapi.json   # from a running service
//   npm run generate -- --file openapi.json   # from a saved document
//   npm run generate -- --check               # fail when the checked-in file is stale
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GENERATED, renderTypes } from "./openapi-types.mjs";

const args = process.argv.slice(2);
const option = (name) => {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : undefined;
};

async function loadSchema() {
  const url = option("--url") ?? process.env.OPENAPI_URL;
  if (url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    return response.json();
  }
  const file = option("--file");
  if (file) return JSON.parse(readFileSync(file, "utf8"));
  const repo = fileURLToPath(new URL("../../../", import.meta.url));
  const text = execFileSync("uv", ["run", "--frozen", "python", "-m", "backend.app.openapi_dump"], {
    cwd: repo,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(text);
}

const rendered = await renderTypes(await loadSchema());
const target = fileURLToPath(GENERATED);
if (args.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(target, "utf8");
  } catch {
    // missing counts as stale
  }
  if (current !== rendered) {
    console.error(
      "src/generated/openapi.ts does not match the service's OpenAPI document: " +
        "run `npm run generate` in clients/typescript and commit the result",
    );
    process.exit(1);
  }
  console.log("src/generated/openapi.ts matches the OpenAPI document");
} else {
  writeFileSync(target, rendered);
  console.log(`wrote ${target}`);
}
