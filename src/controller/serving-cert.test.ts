import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { SecretObject } from '../api/index.ts';
import {
  bundleOf, CA_PUBLISH_LEAD_MS, issueServing, planCas, readCas, renewAt, servingRenewal, signingCa, type ServingCertPolicy,
} from './serving-cert.ts';

const DAY = 86400_000;
const policy: ServingCertPolicy = { secretName: 'tls', dnsNames: ['tok.ns.svc', 'tok.ns.svc.cluster.local'], validityMs: 30 * DAY, caValidityMs: 3650 * DAY };
const T0 = Date.parse('2030-01-01T00:00:00Z');
const b64 = (s: string) => Buffer.from(s).toString('base64');
const caSecret = (cas: ReturnType<typeof planCas>['cas']): SecretObject =>
  ({ metadata: {}, data: { 'ca.crt': b64(bundleOf(cas)), 'ca.key': b64(cas.map((c) => c.keyPem).join('')) } });
const servingSecret = (pair: { certPem: string; keyPem: string }): SecretObject => ({ metadata: {}, data: { 'tls.crt': b64(pair.certPem), 'tls.key': b64(pair.keyPem) } });

describe('the operator-made serving certificate', () => {
  it('starts with a CA, a certificate for the Service names that the CA verifies, and keeps both until a third of their life is left', () => {
    const { cas, made } = planCas([], policy, T0);
    expect(made).toBe(true);
    expect(cas[0]!.cert.ca).toBe(true);
    const pair = issueServing(signingCa(cas, T0), policy, T0);
    const cert = new X509Certificate(pair.certPem);
    expect(cert.verify(cas[0]!.cert.publicKey)).toBe(true);
    expect(cert.checkHost('tok.ns.svc')).toBe('tok.ns.svc');
    expect(cert.ca).toBe(false);
    // Read back from its Secret: nothing to do now, renewal when a third of the 30 days is left.
    const read = readCas(caSecret(cas), T0);
    expect(read.map((c) => c.certPem)).toEqual(cas.map((c) => c.certPem));
    expect(planCas(read, policy, T0 + DAY).made).toBe(false);
    expect(servingRenewal(servingSecret(pair), read, policy, T0 + 19 * DAY)).toBeUndefined();
    expect(servingRenewal(servingSecret(pair), read, policy, T0 + 21 * DAY)).toBe('a third of its life is left');
    expect(renewAt(cert)).toBeCloseTo(T0 + 20 * DAY, -4);
  });

  it('renews on changed names, a key that does not match, a certificate no CA of the bundle signed, or garbage', () => {
    const { cas } = planCas([], policy, T0);
    const pair = issueServing(cas[0]!, policy, T0);
    expect(servingRenewal(servingSecret(pair), cas, { ...policy, dnsNames: ['other.ns.svc'] }, T0)).toBe('its DNS names changed');
    const other = issueServing(cas[0]!, policy, T0);
    expect(servingRenewal(servingSecret({ certPem: pair.certPem, keyPem: other.keyPem }), cas, policy, T0)).toBe('its key does not match');
    const stranger = planCas([], policy, T0).cas;
    expect(servingRenewal(servingSecret(issueServing(stranger[0]!, policy, T0)), cas, policy, T0)).toBe('no CA of the bundle signed it');
    expect(servingRenewal(servingSecret({ certPem: 'not pem', keyPem: 'x' }), cas, policy, T0)).toBe('unreadable');
    expect(servingRenewal(undefined, cas, policy, T0)).toBe('none yet');
  });

  it('drops a CA whose key does not match, or that expired, and never trusts garbage', () => {
    const a = planCas([], policy, T0).cas;
    const b = planCas([], policy, T0).cas;
    const mismatched: SecretObject = { metadata: {}, data: { 'ca.crt': b64(a[0]!.certPem), 'ca.key': b64(b[0]!.keyPem) } };
    expect(readCas(mismatched, T0)).toEqual([]);
    expect(readCas(caSecret(a), T0 + 3651 * DAY)).toEqual([]);
    expect(readCas({ metadata: {}, data: { 'ca.crt': b64('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), 'ca.key': b64('x') } }, T0)).toEqual([]);
  });

  it('rotates the CA with an overlap: the new one joins the bundle, signs only after the publish lead, the old one stays until it expires', () => {
    const first = planCas([], policy, T0).cas;
    const later = T0 + 2500 * DAY;
    const { cas, made } = planCas(first, policy, later);
    expect(made).toBe(true);
    expect(cas).toHaveLength(2);
    expect(signingCa(cas, later)).toBe(first[0]);
    expect(signingCa(cas, later + CA_PUBLISH_LEAD_MS + 1000)).toBe(cas[0]);
    // A serving certificate of the old CA still verifies against the bundle.
    expect(servingRenewal(servingSecret(issueServing(first[0]!, policy, later)), cas, policy, later)).toBeUndefined();
    expect(readCas(caSecret(cas), T0 + 3651 * DAY).map((c) => c.certPem)).toEqual([cas[0]!.certPem]);
  });
});
