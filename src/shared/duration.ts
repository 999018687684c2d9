/**
 * The one duration parser: the CRD's strict pattern (hours, minutes, seconds,
 * such as 24h, 1h30m, 90s), so the apiserver and the code agree on every value.
 */
const DURATION = /^(?:(\d{1,6})h)?(?:(\d{1,8})m)?(?:(\d{1,10})s)?$/;

/** Milliseconds in `s`, or undefined when it is not a duration of the contract's form. */
export function parseDuration(s: string | undefined): number | undefined {
  if (s === undefined || s === '') return undefined;
  const m = DURATION.exec(s);
  if (!m) return undefined;
  const [, h = '0', min = '0', sec = '0'] = m;
  return ((Number(h) * 60 + Number(min)) * 60 + Number(sec)) * 1000;
}

export function formatDuration(ms: number): string {
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}
