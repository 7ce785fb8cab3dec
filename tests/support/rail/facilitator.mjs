// x402 reference facilitator for obol's tests, wired to a local anvil chain.
//
// It is the npm reference implementation, not ours: `x402Facilitator` from @x402/core with the
// `exact` EVM scheme from @x402/evm, on a viem wallet+public client. The HTTP surface copies the
// upstream example (x402 repository, examples/typescript/facilitator/basic/index.ts): the same
// routes, status codes and bodies. `GET /health` is the one addition, for readiness polling.
//
// Environment:
//   RPC_URL                  anvil's JSON-RPC URL (required)
//   FACILITATOR_PRIVATE_KEY  0x-hex key of the account that pays gas and settles (required)
//   PORT                     TCP port on 127.0.0.1 (required)
//   NETWORK                  CAIP-2 network for x402 v2 (default eip155:<chain id of RPC_URL>)
//   V1_NETWORK               x402 v1 network name for the same chain (default "local")
//
// Logs go to stderr: one line per verify/settle (never the signature).

import express from 'express';
import { x402Facilitator } from '@x402/core/facilitator';
import { toFacilitatorEvmSigner } from '@x402/evm';
import { ExactEvmScheme } from '@x402/evm/exact/facilitator';
import { ExactEvmSchemeV1 } from '@x402/evm/exact/v1/facilitator';
import { EVM_NETWORK_CHAIN_ID_MAP } from '@x402/evm/v1';
import { createWalletClient, defineChain, http, nonceManager, publicActions } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

function log(line) {
  process.stderr.write(`[facilitator] ${line}\n`);
}

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    log(`${name} environment variable is required`);
    process.exit(2);
  }
  return value;
}

const rpcUrl = requireEnv('RPC_URL');
const privateKey = requireEnv('FACILITATOR_PRIVATE_KEY');
const port = Number.parseInt(requireEnv('PORT'), 10);

// Ask the node which chain it is, so the viem chain and the CAIP-2 id cannot disagree.
async function fetchChainId(url) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
  });
  const body = await res.json();
  if (!body.result) throw new Error(`eth_chainId failed: ${JSON.stringify(body)}`);
  return Number.parseInt(body.result, 16);
}

let chainId;
try {
  chainId = await fetchChainId(rpcUrl);
} catch (error) {
  log(`cannot reach RPC_URL ${rpcUrl}: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
const network = process.env.NETWORK || `eip155:${chainId}`;
const v1Network = process.env.V1_NETWORK || 'local';

const chain = defineChain({
  id: chainId,
  name: `local-${chainId}`,
  nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
  rpcUrls: { default: { http: [rpcUrl] } },
});

// nonceManager: concurrent settlements from one account get distinct nonces.
const account = privateKeyToAccount(privateKey, { nonceManager });

// anvil mines on every transaction; poll receipts quickly instead of viem's multi-second default.
const viemClient = createWalletClient({
  account,
  chain,
  transport: http(rpcUrl),
  pollingInterval: 50,
}).extend(publicActions);

const evmSigner = toFacilitatorEvmSigner({
  address: account.address,
  getCode: (args) => viemClient.getCode(args),
  readContract: (args) => viemClient.readContract({ ...args, args: args.args || [] }),
  verifyTypedData: (args) => viemClient.verifyTypedData(args),
  writeContract: (args) => viemClient.writeContract({ ...args, args: args.args || [] }),
  sendTransaction: (args) => viemClient.sendTransaction(args),
  waitForTransactionReceipt: (args) => viemClient.waitForTransactionReceipt(args),
});

const facilitator = new x402Facilitator();

// x402 v2: any CAIP-2 id works.
facilitator.register(network, new ExactEvmScheme(evmSigner));

// x402 v1 names networks with a fixed table inside @x402/evm (base, base-sepolia, ...). The table
// is an exported plain object read at verify/settle time, so adding the local chain to it lets
// the unmodified v1 scheme serve this chain under `v1Network` as well.
if (EVM_NETWORK_CHAIN_ID_MAP[v1Network] === undefined) {
  EVM_NETWORK_CHAIN_ID_MAP[v1Network] = chainId;
}
if (EVM_NETWORK_CHAIN_ID_MAP[v1Network] === chainId) {
  facilitator.registerV1(v1Network, new ExactEvmSchemeV1(evmSigner));
} else {
  log(`V1_NETWORK ${v1Network} already names chain ${EVM_NETWORK_CHAIN_ID_MAP[v1Network]}; v1 not registered`);
}

// One log line per request, no signature.
function describe(paymentPayload, paymentRequirements) {
  const version = paymentPayload?.x402Version;
  const net = paymentRequirements?.network ?? paymentPayload?.accepted?.network ?? paymentPayload?.network;
  const auth = paymentPayload?.payload?.authorization ?? {};
  return `v${version} ${net} from=${auth.from} to=${auth.to} value=${auth.value} nonce=${auth.nonce}`;
}

const app = express();
app.use(express.json());

// POST /verify — as the upstream example: 400 when a field is missing, 200 with the
// VerifyResponse (valid or not), 500 with {error} when the facilitator throws.
app.post('/verify', async (req, res) => {
  try {
    const { paymentPayload, paymentRequirements } = req.body;
    if (!paymentPayload || !paymentRequirements) {
      log('verify: missing paymentPayload or paymentRequirements -> 400');
      return res.status(400).json({ error: 'Missing paymentPayload or paymentRequirements' });
    }
    const response = await facilitator.verify(paymentPayload, paymentRequirements);
    log(
      `verify ${describe(paymentPayload, paymentRequirements)} -> ` +
        (response.isValid ? 'valid' : `invalid ${response.invalidReason}`),
    );
    res.json(response);
  } catch (error) {
    log(`verify error: ${error instanceof Error ? error.message : error}`);
    res.status(500).json({ error: error instanceof Error ? error.message : 'Unknown error' });
  }
});

// POST /settle — as the upstream example: 400 when a field is missing, 200 with the
// SettleResponse (success or not), 200 with a failed SettleResponse when a hook aborted,
// 500 with {error} when the facilitator throws.
app.post('/settle', async (req, res) => {
  try {
    const { paymentPayload, paymentRequirements } = req.body;
    if (!paymentPayload || !paymentRequirements) {
      log('settle: missing paymentPayload or paymentRequirements -> 400');
      return res.status(400).json({ error: 'Missing paymentPayload or paymentRequirements' });
    }
    const response = await facilitator.settle(paymentPayload, paymentRequirements);
    log(
      `settle ${describe(paymentPayload, paymentRequirements)} -> ` +
        (response.success ? `success tx=${response.transaction}` : `failed ${response.errorReason}`),
    );
    res.json(response);
  } catch (error) {
    log(`settle error: ${error instanceof Error ? error.message : error}`);
    if (error instanceof Error && error.message.includes('Settlement aborted:')) {
      return res.json({
        success: false,
        errorReason: error.message.replace('Settlement aborted: ', ''),
        network: req.body?.paymentPayload?.network || 'unknown',
      });
    }
    res.status(500).json({ error: error instanceof Error ? error.message : 'Unknown error' });
  }
});

// GET /supported — the facilitator's kinds, extensions and signers.
app.get('/supported', (req, res) => {
  try {
    res.json(facilitator.getSupported());
  } catch (error) {
    log(`supported error: ${error instanceof Error ? error.message : error}`);
    res.status(500).json({ error: error instanceof Error ? error.message : 'Unknown error' });
  }
});

// GET /health — not in the upstream example; for readiness checks.
app.get('/health', (req, res) => {
  res.json({ status: 'ok', network, v1Network, signer: account.address });
});

const server = app.listen(port, '127.0.0.1', () => {
  log(`listening on http://127.0.0.1:${port} network=${network} v1=${v1Network} signer=${account.address} rpc=${rpcUrl}`);
});
server.on('error', (error) => {
  log(`cannot listen on 127.0.0.1:${port}: ${error.message}`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
