import { describe, expect, it } from 'vitest';
import type { ApiKey, Deployment } from '../../api/index.ts';
import { expiryBadge } from './badges.ts';
import { deploymentPage } from './deployment.ts';
import { curlFor, revealPage } from './reveal.ts';
import type { Reveal } from '../sessions.ts';

const reveal: Reveal = {
  kind: 'created', namespace: 'team-a', deployment: 'airflow', name: 'ci', keyId: 'ak_x', secret: 'aks_y', secretName: 'ci',
  audience: "https://it's.example", tokenUrl: 'http://127.0.0.1:8080/oauth/token',
};

describe('the pages', () => {
  it('writes the seed\'s curl with every value quoted for a shell', () => {
    expect(curlFor(reveal)).toBe([
      "curl -s -X POST 'http://127.0.0.1:8080/oauth/token' \\",
      "  -H 'content-type: application/json' \\",
      `  -d '{"client_id":"ak_x","client_secret":"aks_y","audience":"https://it'\\''s.example","grant_type":"client_credentials"}'`,
    ].join('\n'));
  });

  it('says on the create result that the secret is shown only this once', () => {
    const page = revealPage(reveal).text;
    expect(page).toContain('This is the only time the console shows this secret.');
    expect(page).toContain('<code id="key-secret" aria-labelledby="key-secret-label">aks_y</code>');
  });

  it('escapes what the cluster holds: a description cannot become markup', () => {
    const deployment = { metadata: { name: 'airflow', namespace: 'team-a' }, spec: { description: '<img src=x onerror=alert(1)>' } } as Deployment;
    const key = { metadata: { name: 'ci', namespace: 'team-a' }, spec: { deploymentRef: { name: 'airflow' }, description: '<script>x</script>' } } as ApiKey;
    const page = deploymentPage({
      deployment, keys: [key], rights: { create: false, rotate: false, delete: false, readSecrets: false }, csrf: 'c', pollMs: 1000,
    }).text;
    expect(page).not.toContain('<img src=x');
    expect(page).not.toContain('<script>x');
    expect(page).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(page).toMatch(/<button type="submit" class="primary" disabled>Add API Key<\/button>/);
  });
});

describe('the expiry cell', () => {
  const NOW = Date.parse('2026-06-01T00:00:00Z');
  const key = (expiresAt?: string, expiring?: { message: string }): ApiKey => ({
    metadata: { name: 'ci', namespace: 'team-a' }, spec: { deploymentRef: { name: 'airflow' }, expiresAt },
    status: expiring ? { conditions: [{ type: 'Expiring', status: 'True', reason: 'ExpiresSoon', message: expiring.message, lastTransitionTime: '2026-05-30T00:00:00Z' }] } : undefined,
  }) as ApiKey;

  it('says never, the time, Expires soon (with the condition\'s message, escaped) or Expired', () => {
    expect(expiryBadge(key(), NOW).text).toBe('<span class="muted">never</span>');
    expect(expiryBadge(key('2026-07-01T00:00:00Z'), NOW).text).toBe('<time datetime="2026-07-01T00:00:00.000Z">2026-07-01 00:00:00 UTC</time>');
    expect(expiryBadge(key('2026-06-02T00:00:00Z', { message: 'less than 24h "<b>"' }), NOW).text)
      .toBe('<span class="badge warn" title="less than 24h &quot;&lt;b&gt;&quot;">Expires soon</span> <time datetime="2026-06-02T00:00:00.000Z">2026-06-02 00:00:00 UTC</time>');
    expect(expiryBadge(key('2026-06-01T00:00:00Z'), NOW).text).toMatch(/^<span class="badge bad">Expired<\/span> <time/);
  });
});
