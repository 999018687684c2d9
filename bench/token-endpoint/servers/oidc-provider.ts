/**
 * oidc-provider 9 doing client credentials with JWT access tokens (the
 * resource indicators feature gives a resource server its token format),
 * ES256, the same clients and key. Its token endpoint takes form bodies only.
 */
import Provider from 'oidc-provider';
import type { AddressInfo } from 'node:net';
import { announce, AUDIENCE, ISSUER, readData } from '../data.ts';

const data = readData(process.argv[2]!);
const provider = new Provider(ISSUER, {
  clients: data.clients.map((c) => ({
    client_id: c.keyId, client_secret: c.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_post', scope: 'deploy',
    id_token_signed_response_alg: 'ES256',
  })),
  jwks: { keys: [data.signingKeys.keys[0]!.privateJwk!] },
  scopes: ['deploy'],
  cookies: { keys: ['bench-cookie-key'] },
  routes: { token: '/oauth/token' },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => AUDIENCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx: unknown, resource: string) => ({
        scope: 'deploy', audience: resource, accessTokenFormat: 'jwt', accessTokenTTL: 86400, jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
const server = provider.listen(0, '127.0.0.1', () => announce((server.address() as AddressInfo).port));
process.once('SIGTERM', () => { server.close(); server.closeAllConnections(); });
