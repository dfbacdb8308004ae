// Display formatting.

/** An output for display: up to 1 decimal in big numbers, the exact value in titles. */
export function formatOutput(output: number | null | undefined, decimals = 1): string {
  if (output === null || output === undefined || !Number.isFinite(output)) return '–';
  return output.toFixed(decimals);
}

export function formatTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** When a race (start window) began, as local time. */
export function raceStartLabel(raceId: number, windowSeconds: number): string {
  const d = new Date(raceId * windowSeconds * 1000);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
