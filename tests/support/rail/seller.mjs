// x402 reference seller for obol's tests: an Express app behind the npm reference payment
// middleware (@x402/express, x402 v2), shaped like the upstream example
// (x402 repository, examples/typescript/servers/express/index.ts).
//
//   GET /paid  -> 402 + PAYMENT-REQUIRED until paid; then {"secret":"paid content"}, settled by the
//                 middleware after the handler (the reference settle-after-handler behaviour)
//   GET /free  -> {"free":"content"}, no payment
//
// Environment (all required except PORT's companions noted):
//   FACILITATOR_URL  base URL of an x402 facilitator (/supported, /verify, /settle)
//   PAY_TO           0x address that receives payments
//   TOKEN_ADDRESS    EIP-3009 token contract (the requirement's `asset`)
//   PRICE_ATOMIC     price in the token's atomic units, e.g. "10000" (= 0.01 USDC)
//   TOKEN_NAME       the token's EIP-712 domain name, e.g. "USD Coin" (version is "2")
//   PORT             TCP port on 127.0.0.1
//   NETWORK          CAIP-2 network (default eip155:31337)

import express from 'express';
import { paymentMiddleware, x402ResourceServer } from '@x402/express';
import { ExactEvmScheme } from '@x402/evm/exact/server';
import { HTTPFacilitatorClient } from '@x402/core/server';

function log(line) {
  process.stderr.write(`[seller] ${line}\n`);
}

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    log(`${name} environment variable is required`);
    process.exit(2);
  }
  return value;
}

const facilitatorUrl = requireEnv('FACILITATOR_URL');
const payTo = requireEnv('PAY_TO');
const tokenAddress = requireEnv('TOKEN_ADDRESS');
const priceAtomic = requireEnv('PRICE_ATOMIC');
const tokenName = requireEnv('TOKEN_NAME');
const port = Number.parseInt(requireEnv('PORT'), 10);
const network = process.env.NETWORK || 'eip155:31337';

const facilitatorClient = new HTTPFacilitatorClient({ url: facilitatorUrl });

const app = express();

app.use(
  paymentMiddleware(
    {
      'GET /paid': {
        accepts: {
          scheme: 'exact',
          // An AssetAmount: the atomic amount of an explicit token, with its EIP-712 domain.
          price: {
            amount: priceAtomic,
            asset: tokenAddress,
            extra: { name: tokenName, version: '2' },
          },
          network,
          payTo,
        },
        description: 'Paid content for obol tests',
        mimeType: 'application/json',
      },
    },
    new x402ResourceServer(facilitatorClient).register(network, new ExactEvmScheme()),
  ),
);

app.get('/paid', (req, res) => {
  log('GET /paid served (payment verified)');
  res.json({ secret: 'paid content' });
});

app.get('/free', (req, res) => {
  res.json({ free: 'content' });
});

const server = app.listen(port, '127.0.0.1', () => {
  log(
    `listening on http://127.0.0.1:${port} network=${network} asset=${tokenAddress} ` +
      `price=${priceAtomic} payTo=${payTo} facilitator=${facilitatorUrl}`,
  );
});
server.on('error', (error) => {
  log(`cannot listen on 127.0.0.1:${port}: ${error.message}`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
