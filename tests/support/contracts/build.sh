#!/usr/bin/env bash
# Regenerates the committed compiler output next to this script:
#   TestUSDC.bin              creation bytecode (hex, no 0x), deployed by tests with `cast send --create`
#   TestUSDC.abi              ABI (JSON)
#   TestMulticall.bin-runtime runtime bytecode (hex, no 0x), installed by tests with `anvil_setCode`
#   TestMulticall.abi         ABI (JSON)
# Compiler: solcjs from npm `solc` (pinned in tests/support/rail/package.json), optimizer on with
# 200 runs (what `solcjs --optimize` does). Source names carry no directory, so the output does not
# depend on where the repository is checked out. CI does not run this; it deploys the committed files.
# Needs `scripts/setup-test-env.sh` to have installed tests/support/rail/node_modules.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rail="$here/../rail"

if [ ! -f "$rail/node_modules/solc/package.json" ]; then
    echo "build.sh: npm solc not installed in $rail: run scripts/setup-test-env.sh" >&2
    exit 1
fi

cd "$rail"
CONTRACTS_DIR="$here" node --input-type=commonjs - <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const solc = require('solc');

const dir = process.env.CONTRACTS_DIR;
const files = ['TestUSDC.sol', 'TestMulticall.sol'];
const input = {
  language: 'Solidity',
  sources: Object.fromEntries(
    files.map((f) => [f, { content: fs.readFileSync(path.join(dir, f), 'utf8') }]),
  ),
  settings: {
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};

const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
for (const e of out.errors || []) process.stderr.write(e.formattedMessage + '\n');
if (errors.length > 0) process.exit(1);

const write = (name, text) => {
  fs.writeFileSync(path.join(dir, name), text);
  process.stderr.write(`wrote ${name} (${text.length} chars)\n`);
};
const usdc = out.contracts['TestUSDC.sol'].TestUSDC;
write('TestUSDC.bin', usdc.evm.bytecode.object + '\n');
write('TestUSDC.abi', JSON.stringify(usdc.abi) + '\n');
const mc = out.contracts['TestMulticall.sol'].TestMulticall;
write('TestMulticall.bin-runtime', mc.evm.deployedBytecode.object + '\n');
write('TestMulticall.abi', JSON.stringify(mc.abi) + '\n');
process.stderr.write(`compiler: solc ${solc.version()}\n`);
EOF
