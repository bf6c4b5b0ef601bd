// A real OpenID Connect provider for tests/oidc.rs: oidc-provider v9 on loopback with two
// registered clients — Marquee's web UI (the backend-for-frontend; authorization code + PKCE)
// and a "TV app" that gets its own access token to call Marquee with `Authorization: Bearer`.
// Access tokens are JWTs for the resource `urn:marquee:api` with audience `marquee`, roles in
// the `roles` claim (account 3 is a PM). Prints `issuer <url>` once listening.
import http from 'node:http';
import Provider from 'oidc-provider';

const REDIRECT = process.env.MARQUEE_REDIRECT_URI;
if (!REDIRECT) throw new Error('MARQUEE_REDIRECT_URI is required');

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'marquee-web',
      token_endpoint_auth_method: 'none',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
    {
      client_id: 'tv-app',
      token_endpoint_auth_method: 'none',
      redirect_uris: [`${issuer}/tv-callback`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:marquee:api',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: 'marquee',
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (_ctx, token) => ({ roles: token.accountId === '3' ? ['pm'] : [] }),
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  cookies: { keys: ['marquee-oidc-test'] },
});
provider.proxy = false;
server.on('request', provider.callback());
console.log(`issuer ${issuer}`);
