/** The admin kubeconfig: the test CA and the admin client certificate, for one apiserver URL. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function kubeconfigYaml(server: string, pki: string): string {
  const b64 = (f: string) => readFileSync(join(pki, f)).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: local',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64('ca.crt')}`,
    'users:',
    '- name: admin',
    '  user:',
    `    client-certificate-data: ${b64('admin.crt')}`,
    `    client-key-data: ${b64('admin.key')}`,
    'contexts:',
    '- name: local',
    '  context:',
    '    cluster: local',
    '    user: admin',
    '    namespace: default',
    'current-context: local',
    '',
  ].join('\n');
}
