// Display formatting. Times are shown in the clinic's time zone (China, UTC+8) whatever the
// phone is set to, because opening times and slots are the store's local times.

const CHINA_OFFSET_MS = 8 * 3600 * 1000;
const WEEKDAYS = ['日', '一', '二', '三', '四', '五', '六'];

function pad(n) {
  return n < 10 ? `0${n}` : String(n);
}

function thousands(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

// 3000000 fen -> "¥30,000"; keeps cents only when there are any.
function yuan(fen) {
  const v = Number(fen) || 0;
  const sign = v < 0 ? '-' : '';
  const abs = Math.abs(v);
  const whole = Math.floor(abs / 100);
  const cents = abs % 100;
  return `${sign}¥${thousands(whole)}${cents ? `.${pad(cents)}` : ''}`;
}

function points(n) {
  return thousands(Number(n) || 0);
}

function signedPoints(n) {
  const v = Number(n) || 0;
  return `${v > 0 ? '+' : v < 0 ? '-' : ''}${thousands(Math.abs(v))}`;
}

function chinaParts(iso) {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return null;
  const d = new Date(t + CHINA_OFFSET_MS);
  return {
    y: d.getUTCFullYear(), m: d.getUTCMonth() + 1, d: d.getUTCDate(),
    hh: d.getUTCHours(), mm: d.getUTCMinutes(), wd: d.getUTCDay(),
  };
}

function ymdParts(ymd) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(ymd || '');
  if (!m) return null;
  const y = Number(m[1]); const mo = Number(m[2]); const d = Number(m[3]);
  return { y, m: mo, d, wd: new Date(Date.UTC(y, mo - 1, d)).getUTCDay() };
}

// "2026-12-04" -> "2026年12月4日"
function date(ymd) {
  const p = ymdParts(ymd);
  return p ? `${p.y}年${p.m}月${p.d}日` : '';
}

// "2026-12-04" -> "12月4日 周五"
function shortDate(ymd) {
  const p = ymdParts(ymd);
  return p ? `${p.m}月${p.d}日 周${WEEKDAYS[p.wd]}` : '';
}

// ISO instant -> "12月4日 10:00" (China time)
function datetime(iso) {
  const p = chinaParts(iso);
  return p ? `${p.m}月${p.d}日 ${pad(p.hh)}:${pad(p.mm)}` : '';
}

// ISO instant -> "10:00"
function time(iso) {
  const p = chinaParts(iso);
  return p ? `${pad(p.hh)}:${pad(p.mm)}` : '';
}

// ISO instant -> "2026-11-24" (China date)
function chinaDate(iso) {
  const p = chinaParts(iso);
  return p ? `${p.y}-${pad(p.m)}-${pad(p.d)}` : '';
}

// Whole days from `today` to `ymd` (both "YYYY-MM-DD").
function daysBetween(today, ymd) {
  const a = ymdParts(today); const b = ymdParts(ymd);
  if (!a || !b) return 0;
  return Math.round((Date.UTC(b.y, b.m - 1, b.d) - Date.UTC(a.y, a.m - 1, a.d)) / 86400000);
}

// Milliseconds left -> "2天 03:04:05" or "03:04:05".
function countdown(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(s / 86400);
  const rest = s % 86400;
  const hms = `${pad(Math.floor(rest / 3600))}:${pad(Math.floor((rest % 3600) / 60))}:${pad(rest % 60)}`;
  return days > 0 ? `${days}天 ${hms}` : hms;
}

module.exports = {
  yuan, points, signedPoints, date, shortDate, datetime, time, chinaDate, daysBetween, countdown, pad,
};
