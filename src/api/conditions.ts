/**
 * A status condition as every kind of apikeys.dev writes it (metav1.Condition's shape), and how a
 * reader finds one. The controller writes conditions (src/controller/conditions.ts); the console and
 * the plugin read them, so the shape lives here, below all three.
 */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export function getCondition(list: Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}
