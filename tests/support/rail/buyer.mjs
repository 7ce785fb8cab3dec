// x402 reference buyer for obol's tests: the npm client nobody here wrote.
//
// `fetch` wrapped by @x402/fetch (`wrapFetchWithPayment`) with the @x402/evm `exact` client
// scheme registered for the local chain, signing with a viem local account. It GETs one URL,
// pays the 402 the way the reference client does (PAYMENT-SIGNATURE, x402 v2), and prints one
// JSON line on stdout:
//
//   {"status": 200, "body": "<response text>", "paymentResponse": <decoded PAYMENT-RESPONSE | null>}
//
// Exit status: 0 when the final response is 2xx, 1 otherwise (the JSON line is still printed),
// 2 on a usage error or when the client throws (message on stderr).
//
// Environment:
//   PRIVATE_KEY  0x-hex key of the payer (required)
//   URL          the resource to GET (required)
//   NETWORK      CAIP-2 network to register the exact scheme for (default eip155:31337)
//   ASSET        the token the seller asks for (the test's EIP-3009 token). The reference client
//                pays only "default assets" (USDC on known chains) unless a token is opted in
//                with spendControls.allowedAssets: this is that opt-in, for NETWORK only.
//   MAX_AMOUNT   per-payment cap for ASSET in atomic units (default 100000 = 0.10 with 6 decimals)
//   RPC_URL      optional JSON-RPC URL of that chain; when set, the signer gets a viem public
//                client on a custom chain definition (only extension flows read from it)

import { wrapFetchWithPayment, x402Client, x402HTTPClient } from '@x402/fetch';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { toClientEvmSigner } from '@x402/evm';
import { createPublicClient, defineChain, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

function log(line) {
  process.stderr.write(`[buyer] ${line}\n`);
}

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    log(`${name} environment variable is required`);
    process.exit(2);
  }
  return value;
}

const privateKey = requireEnv('PRIVATE_KEY');
const url = requireEnv('URL');
const network = process.env.NETWORK || 'eip155:31337';
const rpcUrl = process.env.RPC_URL;
const asset = process.env.ASSET;
const maxAmount = process.env.MAX_AMOUNT || '100000';

const chainId = Number.parseInt(network.split(':')[1] ?? '', 10);
if (!network.startsWith('eip155:') || !Number.isSafeInteger(chainId)) {
  log(`NETWORK must be an eip155:<chain id> network, got ${network}`);
  process.exit(2);
}

// A chain viem does not know (anvil's 31337 is "foundry" in viem/chains, but the test chain is
// defined here so the RPC URL and the chain id come from the test, not from a preset).
const chain = defineChain({
  id: chainId,
  name: `local-${chainId}`,
  nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
  rpcUrls: { default: { http: [rpcUrl || 'http://127.0.0.1:8545'] } },
});

const account = privateKeyToAccount(privateKey);
const signer = rpcUrl
  ? toClientEvmSigner(account, createPublicClient({ chain, transport: http(rpcUrl) }))
  : account;

const client = new x402Client().register(network, new ExactEvmScheme(signer));
if (asset) {
  client.setSpendControls({
    allowedAssets: [{ network, asset, maxAmountPerPayment: maxAmount }],
  });
}
const httpClient = new x402HTTPClient(client);
const fetchWithPayment = wrapFetchWithPayment(fetch, httpClient);

let response;
try {
  response = await fetchWithPayment(url, { method: 'GET' });
} catch (error) {
  log(`request failed: ${error instanceof Error ? error.message : error}`);
  process.exit(2);
}

const body = await response.text();
let paymentResponse = null;
const header = response.headers.get('PAYMENT-RESPONSE') || response.headers.get('X-PAYMENT-RESPONSE');
if (header) {
  try {
    paymentResponse = httpClient.getPaymentSettleResponse((name) => response.headers.get(name));
  } catch (error) {
    log(`cannot decode PAYMENT-RESPONSE: ${error instanceof Error ? error.message : error}`);
    process.exit(2);
  }
}

process.stdout.write(`${JSON.stringify({ status: response.status, body, paymentResponse })}\n`);
log(`GET ${url} as ${account.address} -> ${response.status}`);
process.exit(response.ok ? 0 : 1);
