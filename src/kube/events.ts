/**
 * Kubernetes events (events.k8s.io/v1) about our objects. Notes are written
 * by this code from constants and public fields only: never a secret.
 */
import { randomBytes } from 'node:crypto';
import { paths, type KubeClient } from './client.ts';
import type { KubeObject } from './types.ts';
import { microTime } from './types.ts';
import type { Logger } from '../shared/log.ts';
import { redactSecrets } from '../shared/redact.ts';

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly controller: string;
  private readonly instance: string;
  private readonly log: Logger;

  constructor(client: KubeClient, controller: string, instance: string, log: Logger) {
    this.client = client;
    this.controller = controller;
    this.instance = instance;
    this.log = log;
  }

  /** Records an event; failures are logged, never thrown (events are best effort). */
  emit(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): void {
    const md = regarding.metadata ?? {};
    const namespace = md.namespace ?? 'default';
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: `${md.name ?? 'object'}.${randomBytes(8).toString('hex')}`, namespace },
      eventTime: microTime(),
      reportingController: this.controller,
      reportingInstance: this.instance.slice(0, 128),
      action: action.slice(0, 128),
      reason: reason.slice(0, 128),
      note: redactSecrets(note).slice(0, 1024),
      type,
      regarding: {
        apiVersion: regarding.apiVersion, kind: regarding.kind, namespace, name: md.name, uid: md.uid,
        resourceVersion: md.resourceVersion,
      },
    };
    this.client.create(paths.collection('events.k8s.io', 'v1', 'events', namespace), body).catch((err: unknown) => {
      this.log.warn({ err, reason, object: `${namespace}/${md.name ?? ''}` }, 'could not record event');
    });
    this.log.info({ event: reason, type, object: `${namespace}/${md.name ?? ''}` }, note);
  }
}
