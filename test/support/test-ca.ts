/**
 * A throwaway certificate authority for a test's own TLS servers (an identity
 * provider, a federation issuer, the token server over TLS), made with
 * test/cluster's openssl runner: the CA and each serving certificate (for
 * 127.0.0.1 and localhost) live in `dir`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openssl } from '../cluster/controlplane.ts';

export interface ServingCertificate { certFile: string; keyFile: string }

export interface TestCa {
  /** The CA certificate's file, for clients (and the apiserver) to trust. */
  caFile: string;
  /** The CA certificate's PEM. */
  caPem(): string;
  /** Makes (once per name) a serving certificate for 127.0.0.1 and localhost, signed by the CA. */
  serving(name: string): ServingCertificate;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeTestCa(dir: string, commonName: string): TestCa {
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${commonName}`], dir);
  const caFile = join(dir, 'ca.crt');
  return {
    caFile,
    caPem: () => readFileSync(caFile, 'utf8'),
    serving(name) {
      openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`,
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
        '-days', '2', '-copy_extensions', 'copy', '-out', `${name}.crt`], dir);
      return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
    },
  };
}
