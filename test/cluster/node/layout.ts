/**
 * Where the test node keeps its files under the cluster's folder, and the
 * addresses it uses. Every address lives in the node's own network namespace
 * (see namespace.ts), which has no route out: the ranges are private, and
 * nothing ever sends to them from the machine's own network.
 */
import { join } from 'node:path';

export const NODE_NAME = 'node-1';
/** The node's address, on the bridge Pods attach to. */
export const NODE_IP = '10.88.0.1';
export const POD_CIDR = '10.88.0.0/24';
export const SERVICE_CIDR = '10.0.0.0/24';
export const KUBERNETES_SERVICE_IP = '10.0.0.1';
export const DNS_SERVICE_IP = '10.0.0.10';
export const CLUSTER_DOMAIN = 'cluster.local';
/** The apiserver's port inside the namespace; the host reaches it through a relay. */
export const APISERVER_PORT = 6443;
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/** The bridge CNI attaches Pods to; it holds NODE_IP. */
export const BRIDGE = 'cni0';

export interface NodeLayout {
  root: string;
  containerdConfig: string;
  containerdSocket: string;
  containerdRoot: string;
  containerdState: string;
  containerdOpt: string;
  cniConfDir: string;
  cniIpamDir: string;
  kubeletConfig: string;
  kubeletRoot: string;
  kubeletCerts: string;
  kubeletVolumePlugins: string;
  kubeletPodLogs: string;
  resolvConf: string;
  kubeProxyConfig: string;
  corefile: string;
  /** Files shown over machine-wide /proc/sys settings inside the node. */
  kernelSettings: string;
  /** Bind-mounted over /var/lib inside the node, so that what the kubelet and CNI write there stays here. */
  varLib: string;
  /** The kubeconfig of the node's own components: the apiserver on its in-namespace address. */
  kubeconfig: string;
  /** Both relays open this socket: the host's end listens on loopback, the node's end reaches the apiserver. */
  apiserverSocket: string;
}

export function nodeLayout(clusterDir: string): NodeLayout {
  const root = join(clusterDir, 'node');
  const containerd = join(root, 'containerd');
  const kubelet = join(root, 'kubelet');
  return {
    root,
    containerdConfig: join(containerd, 'config.toml'),
    containerdSocket: join(containerd, 'containerd.sock'),
    containerdRoot: join(containerd, 'root'),
    containerdState: join(containerd, 'state'),
    containerdOpt: join(containerd, 'opt'),
    cniConfDir: join(root, 'cni', 'net.d'),
    cniIpamDir: join(root, 'cni', 'ipam'),
    kubeletConfig: join(kubelet, 'config.yaml'),
    kubeletRoot: join(kubelet, 'root'),
    kubeletCerts: join(kubelet, 'pki'),
    kubeletVolumePlugins: join(kubelet, 'volume-plugins'),
    kubeletPodLogs: join(kubelet, 'pod-logs'),
    resolvConf: join(root, 'resolv.conf'),
    kubeProxyConfig: join(root, 'kube-proxy.yaml'),
    corefile: join(root, 'Corefile'),
    varLib: join(root, 'var-lib'),
    kernelSettings: join(root, 'kernel-settings'),
    kubeconfig: join(root, 'kubeconfig'),
    apiserverSocket: join(root, 'apiserver.sock'),
  };
}
