// Compiles service/contracts/NodeList.sol with the pinned solc-js and writes the artifact
// (ABI, creation and runtime bytecode, compiler version and settings) that the Rust crate
// embeds. Usage:
//   node compile.js              writes service/contracts/NodeList.json
//   node compile.js --out FILE   writes FILE instead (the sync test compares it with the committed one)
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const contractsDir = path.resolve(__dirname, '..', '..', 'contracts');
const sourceName = 'NodeList.sol';
const contractName = 'NodeList';

function parseArgs(argv) {
  let out = path.join(contractsDir, `${contractName}.json`);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && i + 1 < argv.length) {
      out = path.resolve(argv[++i]);
    } else {
      throw new Error(`unknown argument ${argv[i]} (usage: node compile.js [--out FILE])`);
    }
  }
  return { out };
}

// Everything that changes the bytecode is fixed here, so the artifact is reproducible.
// evmVersion: shanghai is the newest fork the test chain (ganache 7.9) runs.
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'shanghai',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

function main() {
  const { out } = parseArgs(process.argv.slice(2));
  const source = fs.readFileSync(path.join(contractsDir, sourceName), 'utf8');
  const input = { language: 'Solidity', sources: { [sourceName]: { content: source } }, settings };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = output.errors || [];
  for (const p of problems) {
    process.stderr.write(p.formattedMessage || p.message);
  }
  if (problems.some((p) => p.severity === 'error')) {
    process.exit(1);
  }
  const c = output.contracts[sourceName][contractName];
  const artifact = {
    contractName,
    sourceName: `service/contracts/${sourceName}`,
    compiler: `solc-js ${solc.version()}`,
    settings: { optimizer: settings.optimizer, evmVersion: settings.evmVersion },
    abi: c.abi,
    bytecode: `0x${c.evm.bytecode.object}`,
    deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
  };
  fs.writeFileSync(out, `${JSON.stringify(artifact, null, 2)}\n`);
  process.stdout.write(`wrote ${out} (${c.evm.deployedBytecode.object.length / 2} bytes of runtime code)\n`);
}

main();
