/**
 * The node's configuration files, as pure functions of its layout: containerd,
 * CNI, the kubelet, kube-proxy and CoreDNS. Each setting that is not a default
 * is there for a reason given beside it.
 */
import { stringify } from 'yaml';
import {
  BRIDGE, CLUSTER_DOMAIN, DNS_SERVICE_IP, NODE_IP, NODE_NAME, POD_CIDR, type NodeLayout,
} from './layout.ts';

/** The kubelet's cgroup root in every hierarchy: one folder that teardown removes whole. */
export const CGROUP_ROOT = 'apikey-operator-node';

export function containerdConfig(l: NodeLayout, o: { sandboxImage: string; runc: string }): string {
  return `version = 3
root = ${JSON.stringify(l.containerdRoot)}
state = ${JSON.stringify(l.containerdState)}

[grpc]
  address = ${JSON.stringify(l.containerdSocket)}

# Plugins that would otherwise use machine-wide paths.
[plugins.'io.containerd.internal.v1.opt']
  path = ${JSON.stringify(l.containerdOpt)}
[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  # Sandboxes use the locally built pause image: nothing is ever pulled.
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = ${JSON.stringify(o.sandboxImage)}

[plugins.'io.containerd.cri.v1.runtime']
  # The machine's VM withholds CAP_SYS_RESOURCE: runc cannot lower oom_score_adj.
  restrict_oom_score_adj = true
  # Pod network namespaces under the node's own state, not /run/netns.
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = ${JSON.stringify(o.runc)}
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = ${JSON.stringify(l.cniConfDir)}
`;
}

export function cniConflist(l: NodeLayout): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'node',
    plugins: [
      {
        // Pods' default route leads to the node, whose namespace has no route out.
        type: 'bridge', bridge: BRIDGE, isGateway: true, ipMasq: false, hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: POD_CIDR, gateway: NODE_IP }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: l.cniIpamDir },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'loopback' },
    ],
  }, null, 2);
}

/**
 * The machine-wide kernel settings the kubelet insists on (it writes them at
 * start unless protectKernelDefaults, then refuses to start if they differ).
 * The node shows the kubelet these values in its own mount namespace, and
 * protectKernelDefaults makes any miss fail instead of changing the machine.
 */
export const KUBELET_KERNEL_SETTINGS: Record<string, string> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

export function kubeletConfig(l: NodeLayout, o: { clientCaFile: string }): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // The machine runs cgroup v1 and no systemd.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${CGROUP_ROOT}`,
    containerRuntimeEndpoint: `unix://${l.containerdSocket}`,
    address: NODE_IP,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: o.clientCaFile } },
    authorization: { mode: 'Webhook' },
    failSwapOn: false,
    protectKernelDefaults: true,
    clusterDomain: CLUSTER_DOMAIN,
    clusterDNS: [DNS_SERVICE_IP],
    resolvConf: l.resolvConf,
    // A test machine's disk may be fuller than a production node's: never evict or collect images for it.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    // A mounted Secret's files change at the Pod's next sync: every 10 s here instead of every minute,
    // so that a test of a consumer across a key rotation takes seconds, not minutes.
    syncFrequency: '10s',
    registerNode: true,
    // Paths the kubelet would otherwise take from the machine.
    volumePluginDir: l.kubeletVolumePlugins,
    podLogsDir: l.kubeletPodLogs,
  });
}

export function kubeProxyConfig(l: NodeLayout): string {
  return stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig: l.kubeconfig },
    hostnameOverride: NODE_NAME,
    clusterCIDR: POD_CIDR,
    bindAddress: '127.0.0.1',
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    // Zeros leave the conntrack sysctls alone: some of them are machine-wide.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    // Masquerading every Service connection makes replies between Pods on the bridge come back
    // through the node, where the NAT is undone.
    iptables: { masqueradeAll: true, syncPeriod: '5s', minSyncPeriod: '0s' },
    detectLocalMode: 'ClusterCIDR',
  });
}

/** Cluster DNS only: no `forward`, so a name outside the cluster gets an error, never an upstream query. */
export function corefile(l: NodeLayout): string {
  return `.:53 {
    bind ${NODE_IP}
    errors
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${l.kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
`;
}

/** Pods with dnsPolicy Default get the cluster's DNS too: the machine's resolver is outside. */
export function resolvConf(): string {
  return `nameserver ${DNS_SERVICE_IP}\n`;
}

/** The kube-dns Service, backed by CoreDNS on the node's address (it runs as a process of the node). */
export function dnsObjects(): { service: object; endpointSlice: object } {
  const ports = [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }];
  return {
    service: {
      apiVersion: 'v1', kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
      spec: { clusterIP: DNS_SERVICE_IP, ports: ports.map((p) => ({ ...p, targetPort: 53 })) },
    },
    endpointSlice: {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: {
        name: 'kube-dns-node', namespace: 'kube-system',
        labels: { 'kubernetes.io/service-name': 'kube-dns', 'endpointslice.kubernetes.io/managed-by': 'apikey-operator-test-node' },
      },
      addressType: 'IPv4',
      ports,
      endpoints: [{ addresses: [NODE_IP], conditions: { ready: true } }],
    },
  };
}
