import { describe, expect, it } from 'vitest';
import { MAX_EXPIRED_SERIES, TokenServerMetrics } from './metrics.ts';

const metrics = () => new TokenServerMetrics({ sizes: () => ({}), rateLimitEntries: () => 0, ready: () => true, signingKeysProblem: () => undefined }, false);

describe('the refusals of expired keys', () => {
  it('are counted by namespace and Deployment', async () => {
    const m = metrics();
    m.expiredKeyRefused('team-a', 'airflow');
    m.expiredKeyRefused('team-a', 'airflow');
    m.expiredKeyRefused('team-b', 'airflow');
    const text = await m.registry.metrics();
    expect(text).toContain('apikey_operator_token_expired_key_refusals_total{namespace="team-a",deployment="airflow"} 2');
    expect(text).toContain('apikey_operator_token_expired_key_refusals_total{namespace="team-b",deployment="airflow"} 1');
  });

  it(`hold at most ${MAX_EXPIRED_SERIES} pairs, then count the rest under _other`, async () => {
    const m = metrics();
    for (let i = 0; i < MAX_EXPIRED_SERIES + 50; i++) m.expiredKeyRefused('ns', `d${i}`);
    m.expiredKeyRefused('ns', 'd0');
    const lines = (await m.registry.metrics()).split('\n').filter((l) => l.startsWith('apikey_operator_token_expired_key_refusals_total{'));
    expect(lines).toHaveLength(MAX_EXPIRED_SERIES + 1);
    expect(lines).toContain('apikey_operator_token_expired_key_refusals_total{namespace="_other",deployment="_other"} 50');
    expect(lines).toContain('apikey_operator_token_expired_key_refusals_total{namespace="ns",deployment="d0"} 2');
  });
});
