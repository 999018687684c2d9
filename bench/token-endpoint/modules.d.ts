// Just enough of the untyped packages the benchmark drives (oidc-provider has its own, in @types/oidc-provider).
declare module 'autocannon' {
  export interface Request {
    method?: string; path?: string; headers?: Record<string, string>; body?: string;
    /** Called before each request is sent; what it returns is sent. */
    setupRequest?: (req: Request, context: Record<string, unknown>) => Request;
  }
  export interface Options {
    url: string;
    connections?: number;
    pipelining?: number;
    duration?: number;
    requests?: Request[];
    method?: string;
    headers?: Record<string, string>;
  }
  export interface Histogram { average: number; mean: number; p50: number; p90: number; p99: number; max: number }
  export interface Result {
    requests: Histogram & { total: number };
    latency: Histogram;
    non2xx: number;
    errors: number;
    timeouts: number;
    '2xx': number;
    duration: number;
  }
  export default function autocannon(opts: Options): Promise<Result>;
}
