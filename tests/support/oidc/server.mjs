// An OpenID Connect provider for obol's `auth` tests: npm oidc-provider 9.13.3 (panva,
// OpenID-certified) with its development login and consent forms, so a test can sign in over
// plain HTTP (tests/support/oidc.rs drives the forms).
//
// Configuration (environment):
//   PORT            port on 127.0.0.1 (required; issuer is http://127.0.0.1:PORT)
//   CLIENT_ID       the registered client (default obol-cli)
//   CLIENT_SECRET   when set, the client is confidential (client_secret_basic or _post, like a
//                   Google "Desktop app" client); otherwise public (auth method none)
//   ID_TOKEN_TTL    ID token lifetime in seconds (default 3600; use ~20 for --watch tests)
//   ACCESS_TOKEN_TTL access token lifetime in seconds (default: ID_TOKEN_TTL)
//   ROTATE_REFRESH  "always" (default): every refresh returns a new refresh token and retires
//                   the old one; "never": the refresh token stays the same
//   OMIT_REFRESH_TOKEN_ON_REFRESH  "1": refresh responses carry no refresh_token (Google's
//                   behaviour); implies ROTATE_REFRESH=never
//
// Loopback redirect URIs on any port are accepted for http://127.0.0.1/callback (RFC 8252, a
// native client). Revocation (/token/revocation) and introspection (/token/introspection) are on.
// Prints "ready <issuer>" on stdout once listening.
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';

const port = Number(process.env.PORT);
if (!port) {
  console.error('PORT is required');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const clientId = process.env.CLIENT_ID || 'obol-cli';
const clientSecret = process.env.CLIENT_SECRET || '';
const idTtl = Number(process.env.ID_TOKEN_TTL || 3600);
const accessTtl = Number(process.env.ACCESS_TOKEN_TTL || idTtl);
const omitRefresh = process.env.OMIT_REFRESH_TOKEN_ON_REFRESH === '1';
const rotate = !omitRefresh && (process.env.ROTATE_REFRESH || 'always') === 'always';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' };

const client = {
  client_id: clientId,
  application_type: 'native',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/callback'],
};
if (clientSecret) {
  client.client_secret = clientSecret;
  client.token_endpoint_auth_method = 'client_secret_basic';
} else {
  client.token_endpoint_auth_method = 'none';
}

const provider = new Provider(issuer, {
  clients: [client],
  jwks: { keys: [jwk] },
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Put the email claims in the ID token itself, as Google does.
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@example.test`, email_verified: true, name: id }),
  }),
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  ttl: {
    AccessToken: accessTtl,
    IdToken: idTtl,
    RefreshToken: 86400,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 3600,
    Grant: 86400,
  },
  issueRefreshToken: async (ctx, c) => c.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => rotate,
});

if (omitRefresh) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && ctx.method === 'POST' && ctx.body && typeof ctx.body === 'object'
        && ctx.oidc?.params?.grant_type === 'refresh_token') {
      delete ctx.body.refresh_token;
    }
  });
}

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
