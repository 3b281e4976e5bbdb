#!/usr/bin/env node
// Compiles contracts/src and contracts/test with the pinned npm `solc` and writes one artifact per
// contract to contracts/artifacts/<Name>.json (ABI, bytecode, compiler version, settings and the
// sha256 of the sources). `node contracts/build.js --check` compiles without writing and exits 1
// when the committed artifacts differ from a fresh build.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const ROOT = __dirname;
const SOURCE_DIRS = ["src", "test"];
const ARTIFACTS = path.join(ROOT, "artifacts");
// solc's generic caution about transient storage; DisputeGame uses it only for a lock that every
// call clears, the use the warning itself calls safe.
const TRANSIENT_STORAGE_WARNING = "2394";
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 1000000 },
  viaIR: true,
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function sourceFiles() {
  const files = [];
  for (const dir of SOURCE_DIRS) {
    for (const name of fs.readdirSync(path.join(ROOT, dir)).sort()) {
      if (name.endsWith(".sol")) files.push(`${dir}/${name}`);
    }
  }
  return files.sort();
}

// The hash prover/chain/artifacts.py recomputes to tell stale artifacts: sha256 over every source as
// "<path>\0<content>\0", in sorted path order.
function sourcesHash(files, contents) {
  const hash = crypto.createHash("sha256");
  for (const file of files) {
    hash.update(file + "\0");
    hash.update(contents[file]);
    hash.update("\0");
  }
  return hash.digest("hex");
}

function compile() {
  const files = sourceFiles();
  const contents = {};
  for (const file of files) contents[file] = fs.readFileSync(path.join(ROOT, file), "utf8");
  const input = {
    language: "Solidity",
    sources: Object.fromEntries(files.map((f) => [f, { content: contents[f] }])),
    settings: SETTINGS,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = (output.errors || []).filter(
    (e) => e.severity === "error" || (e.type === "Warning" && e.errorCode !== TRANSIENT_STORAGE_WARNING),
  );
  for (const problem of problems) process.stderr.write(problem.formattedMessage + "\n");
  if (problems.some((e) => e.severity === "error")) process.exit(1);
  const version = solc.version();
  const hash = sourcesHash(files, contents);
  const artifacts = {};
  for (const [sourceName, contracts] of Object.entries(output.contracts)) {
    for (const [contractName, compiled] of Object.entries(contracts)) {
      // A library of internal functions is inlined into its users: nothing to deploy.
      // Interfaces have no code either.
      if (compiled.evm.bytecode.object === "" || compiled.abi.every((e) => e.type === "error")) continue;
      artifacts[contractName] = {
        contractName,
        sourceName,
        abi: compiled.abi,
        bytecode: "0x" + compiled.evm.bytecode.object,
        deployedBytecode: "0x" + compiled.evm.deployedBytecode.object,
        compiler: { name: "solc", version },
        settings: SETTINGS,
        sourcesSha256: hash,
      };
    }
  }
  return artifacts;
}

function render(artifact) {
  return JSON.stringify(artifact, null, 2) + "\n";
}

function main() {
  const check = process.argv.includes("--check");
  const artifacts = compile();
  if (check) {
    let stale = false;
    for (const [name, artifact] of Object.entries(artifacts)) {
      const file = path.join(ARTIFACTS, `${name}.json`);
      if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== render(artifact)) {
        process.stderr.write(`stale artifact: contracts/artifacts/${name}.json\n`);
        stale = true;
      }
    }
    process.exit(stale ? 1 : 0);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of fs.readdirSync(ARTIFACTS)) {
    if (name.endsWith(".json") && !(name.slice(0, -5) in artifacts)) fs.unlinkSync(path.join(ARTIFACTS, name));
  }
  for (const [name, artifact] of Object.entries(artifacts)) {
    fs.writeFileSync(path.join(ARTIFACTS, `${name}.json`), render(artifact));
  }
  process.stdout.write(`built ${Object.keys(artifacts).sort().join(", ")} with solc ${solc.version()}\n`);
}

main();
