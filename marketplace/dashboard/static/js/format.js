// Numbers, amounts, addresses and times in the forms people read; exact values stay available.

export const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";
export const ETH_DECIMALS = 18;
const groups = new Intl.NumberFormat("en");
const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "long" });

/** A base-unit amount (decimal string) in whole units, rounded to `fraction` digits, grouped. */
export function formatUnits(value, decimals = ETH_DECIMALS, fraction = 6) {
  let amount = BigInt(value);
  const negative = amount < 0n;
  if (negative) amount = -amount;
  const shown = 10n ** BigInt(Math.min(fraction, decimals));
  const unit = 10n ** BigInt(decimals);
  const scaled = (amount * shown + unit / 2n) / unit; // rounded half up
  if (scaled === 0n && amount > 0n) return `${negative ? ">-" : "<"}${1 / Number(shown)}`;
  const whole = scaled / shown;
  let rest = (scaled % shown).toString().padStart(String(shown).length - 1, "0").replace(/0+$/, "");
  if (shown === 1n) rest = "";
  return `${negative ? "-" : ""}${groups.format(whole)}${rest ? "." + rest : ""}`;
}

/** The unit an amount of `token` is shown in. */
export function unitOf(token) {
  return token === ZERO_ADDRESS ? "ETH" : "tokens";
}

/** The exact value for a tooltip: wei for ETH, base units of the token contract otherwise. */
export function exactAmount(value, token) {
  const exact = groups.format(BigInt(value));
  return token === ZERO_ADDRESS ? `${exact} wei` : `${exact} base units of token ${token} (18 decimals assumed)`;
}

/** Amount as a plain number of whole units, for charts (precision beyond 2^53 does not matter there). */
export function unitsAsNumber(value, decimals = ETH_DECIMALS) {
  return Number(BigInt(value)) / 10 ** decimals;
}

export function shortAddress(address) {
  return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
}

export function shortHash(hash) {
  return hash.length > 16 ? `${hash.slice(0, 10)}…${hash.slice(-6)}` : hash;
}

export function formatCount(value) {
  return value === null || value === undefined ? "—" : groups.format(value);
}

/** "2 minutes ago" for a Unix time, relative to `now` (seconds). */
export function relativeTime(seconds, now) {
  const delta = seconds - now;
  const size = Math.abs(delta);
  if (size < 5) return "just now";
  const [unit, divisor] =
    size < 60 ? ["second", 1] : size < 3600 ? ["minute", 60] : size < 86400 ? ["hour", 3600] : ["day", 86400];
  return relative.format(Math.round(delta / divisor), unit);
}

/** The exact time for a tooltip: local and UTC. */
export function exactTime(seconds) {
  const date = new Date(seconds * 1000);
  return `${date.toLocaleString()} (${date.toISOString().replace(".000Z", "Z")}, block time)`;
}

/** "1 h 5 min", "42 s": a length of time in at most two units. */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const total = Math.round(seconds);
  if (total < 60) return `${total} s`;
  const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
  const parts = [];
  let rest = total;
  for (const [name, size] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)} ${name}`);
      rest %= size;
    } else if (parts.length) break;
  }
  return parts.join(" ");
}

export function formatBytes(size) {
  if (size === null || size === undefined) return "—";
  if (size < 1024) return `${size} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = size / 1024;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index += 1;
  }
  return `${value.toFixed(1)} ${units[index]}`;
}
