// A paid OpenAI-like upstream for obol's buyer-sidecar tests: an Express app behind the npm
// reference payment middleware (@x402/express, x402 v2), wired like seller.mjs.
//
//   POST /v1/chat/completions, /v1/responses
//        -> 402 + PAYMENT-REQUIRED until paid; then an OpenAI-style answer echoing the model it
//           received (SSE when the body has "stream": true), settled by the middleware after the
//           handler (the reference middleware buffers the answer until settlement)
//   POST /free/v1/chat/completions, /free/v1/responses
//        -> the same answers without payment
//   A body with "gate": true holds the answer until POST /admin/release (or 20 s); with
//   "stream": true the first SSE event is sent at once and the rest only after the release.
//   POST /admin/price   {"amount": "20000"}          -> the price asked from now on
//   POST /admin/fail    {"status": 500, "count": 1}  -> the next paid handler calls answer this
//   POST /admin/release                              -> lets gated streams finish
//   GET  /admin/stats   -> {"paid": n, "free": n, "models": [...], "price": "..."}
//   GET  /health
//
// Environment: FACILITATOR_URL, PAY_TO, TOKEN_ADDRESS, PRICE_ATOMIC, TOKEN_NAME, PORT (all
// required), NETWORK (default eip155:31337).

import express from 'express';
import { paymentMiddleware, x402ResourceServer } from '@x402/express';
import { ExactEvmScheme } from '@x402/evm/exact/server';
import { HTTPFacilitatorClient } from '@x402/core/server';

function log(line) {
  process.stderr.write(`[paid-llm] ${line}\n`);
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
let price = requireEnv('PRICE_ATOMIC');
const tokenName = requireEnv('TOKEN_NAME');
const port = Number.parseInt(requireEnv('PORT'), 10);
const network = process.env.NETWORK || 'eip155:31337';

const stats = { paid: 0, free: 0, models: [] };
let fail = { status: 500, count: 0 };
let gates = [];

const facilitatorClient = new HTTPFacilitatorClient({ url: facilitatorUrl });

const accepts = {
  scheme: 'exact',
  // Evaluated per request, so POST /admin/price changes what the 402 asks.
  price: () => ({ amount: price, asset: tokenAddress, extra: { name: tokenName, version: '2' } }),
  network,
  payTo,
};

const app = express();
app.use(express.json({ limit: '4mb' }));

app.use(
  paymentMiddleware(
    {
      'POST /v1/chat/completions': {
        accepts,
        description: 'Paid chat completions for obol tests',
        mimeType: 'application/json',
      },
      'POST /v1/responses': {
        accepts,
        description: 'Paid responses for obol tests',
        mimeType: 'application/json',
      },
    },
    new x402ResourceServer(facilitatorClient).register(network, new ExactEvmScheme()),
  ),
);

function completion(model, text) {
  return {
    id: `chatcmpl-${Date.now()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  };
}

function chunk(model, content) {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-stream',
    object: 'chat.completion.chunk',
    model,
    choices: [{ index: 0, delta: { content } }],
  })}\n\n`;
}

function waitForRelease() {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 20000);
    gates.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function answer(req, res, kind, shape) {
  const body = req.body || {};
  const model = body.model;
  stats[kind] += 1;
  stats.models.push(model);
  if (kind === 'paid' && fail.count > 0) {
    fail.count -= 1;
    log(`${req.path} -> ${fail.status} (as told)`);
    res.status(fail.status).json({ error: { message: 'the model crashed (test)', type: 'server_error' } });
    return;
  }
  const text = kind === 'paid' ? 'paid answer' : 'free answer';
  if (body.gate && !body.stream) {
    await waitForRelease();
  }
  if (body.stream) {
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream');
    res.setHeader('Cache-Control', 'no-cache');
    res.flushHeaders();
    res.write(chunk(model, 'first'));
    if (body.gate) {
      await waitForRelease();
    }
    res.write(chunk(model, ' second'));
    res.write('data: [DONE]\n\n');
    res.end();
    return;
  }
  if (shape === 'responses') {
    res.json({
      id: `resp_${Date.now()}`,
      object: 'response',
      model,
      output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text }] }],
    });
    return;
  }
  res.json(completion(model, text));
}

app.post('/v1/chat/completions', (req, res) => answer(req, res, 'paid', 'chat'));
app.post('/v1/responses', (req, res) => answer(req, res, 'paid', 'responses'));
app.post('/free/v1/chat/completions', (req, res) => answer(req, res, 'free', 'chat'));
app.post('/free/v1/responses', (req, res) => answer(req, res, 'free', 'responses'));

app.post('/admin/price', (req, res) => {
  price = String(req.body.amount);
  log(`price is now ${price}`);
  res.json({ price });
});

app.post('/admin/fail', (req, res) => {
  fail = { status: Number(req.body.status || 500), count: Number(req.body.count || 1) };
  res.json(fail);
});

app.post('/admin/release', (req, res) => {
  const released = gates.length;
  for (const g of gates) g();
  gates = [];
  res.json({ released });
});

app.get('/admin/stats', (req, res) => {
  res.json({ ...stats, price });
});

app.get('/health', (req, res) => {
  res.json({ status: 'ok' });
});

const server = app.listen(port, '127.0.0.1', () => {
  log(
    `listening on http://127.0.0.1:${port} network=${network} asset=${tokenAddress} ` +
      `price=${price} payTo=${payTo} facilitator=${facilitatorUrl}`,
  );
});
server.on('error', (error) => {
  log(`cannot listen on 127.0.0.1:${port}: ${error.message}`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
