/**
 * Just enough X.509 to make the operator's own serving certificates without
 * openssl or a dependency: a self-signed CA and the leaf certificates it
 * signs, ECDSA P-256 with SHA-256, DER-encoded here and signed with
 * node:crypto. Reading certificates back is node:crypto's X509Certificate.
 *
 * What is encoded (RFC 5280): version 3, a random positive 128-bit serial,
 * issuer and subject as a single commonName, validity (UTCTime before 2050,
 * GeneralizedTime after), the key's SubjectPublicKeyInfo, and the extensions
 * a strict client checks: basicConstraints (critical; cA for the CA),
 * keyUsage (critical; keyCertSign and cRLSign for the CA, digitalSignature),
 * extKeyUsage serverAuth and subjectAltName (DNS names, IP addresses) for a
 * leaf, subjectKeyIdentifier and authorityKeyIdentifier.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

export interface KeyPairPem { certPem: string; keyPem: string }

export interface CertificateRequest {
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  /** A CA certificate (may sign others) rather than a serving one. */
  ca: boolean;
  /** Subject alternative names of a serving certificate: DNS names or IP addresses. */
  altNames?: readonly string[];
}

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
const seq = (...c: Buffer[]) => tlv(0x30, ...c);

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [a * 40 + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function integer(value: Buffer): Buffer {
  let i = 0;
  while (i < value.length - 1 && value[i] === 0) i++;
  const v = value.subarray(i);
  return tlv(0x02, (v[0]! & 0x80) ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').replace(/\.\d{3}Z$/, 'Z');
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'));
}

const name = (cn: string) => seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), tlv(0x04, value));
}

function altName(n: string): Buffer {
  const family = isIP(n);
  if (family === 4) return tlv(0x87, Buffer.from(n.split('.').map(Number)));
  if (family === 6) {
    const [head = '', tail = ''] = n.split('::');
    const h = head ? head.split(':') : [];
    const t = n.includes('::') ? (tail ? tail.split(':') : []) : [];
    const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    return tlv(0x87, Buffer.concat(groups.map((g) => { const b = Buffer.alloc(2); b.writeUInt16BE(parseInt(g, 16)); return b; })));
  }
  return tlv(0x82, Buffer.from(n, 'ascii'));
}

const keyId = (spki: Buffer) => createHash('sha1').update(spki).digest();

/** A new ECDSA P-256 key, as PKCS#8 PEM. */
export function newKeyPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * A certificate for `keyPem`'s public key, signed by `issuer` (its CA
 * certificate's common name and key), or self-signed when there is none.
 */
export function issueCertificate(req: CertificateRequest, keyPem: string, issuer?: { commonName: string; keyPem: string }): string {
  const subjectKey = createPublicKey(keyPem);
  const spki = subjectKey.export({ type: 'spki', format: 'der' });
  const signer: KeyObject | string = issuer?.keyPem ?? keyPem;
  const issuerSpki = createPublicKey(signer).export({ type: 'spki', format: 'der' });
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const extensions = [
    extension('2.5.29.19', true, seq(...(req.ca ? [tlv(0x01, Buffer.from([0xff]))] : []))),
    // keyUsage: digitalSignature (and keyCertSign, cRLSign for a CA); the first byte counts unused bits.
    extension('2.5.29.15', true, req.ca ? tlv(0x03, Buffer.from([0x01, 0x86])) : tlv(0x03, Buffer.from([0x07, 0x80]))),
    ...(req.ca ? [] : [extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1')))]),
    ...(req.altNames?.length ? [extension('2.5.29.17', false, seq(...req.altNames.map(altName)))] : []),
    extension('2.5.29.14', false, tlv(0x04, keyId(spki))),
    extension('2.5.29.35', false, seq(tlv(0x80, keyId(issuerSpki)))),
  ];
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    ECDSA_SHA256,
    name(issuer?.commonName ?? req.commonName),
    seq(time(req.notBefore), time(req.notAfter)),
    name(req.commonName),
    spki,
    tlv(0xa3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, { key: signer, dsaEncoding: 'der' });
  const der = seq(tbs, ECDSA_SHA256, tlv(0x03, Buffer.from([0]), signature));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}
