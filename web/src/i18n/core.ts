// Languages, translation tables and locale-aware formatting.
//
// Hebrew (right-to-left) is the default, English the alternative. The page's choice is a UI
// preference, kept in localStorage; a card follows the nearest `lang` attribute above it (so a
// React host's <html lang="en"> or a `lang` prop wins), else that preference.

export const LANGS = ['he', 'en'] as const;
export type Lang = (typeof LANGS)[number];
export const LANG_CHANGE_EVENT = 'longtasks:langchange';
const LANG_KEY = 'longtasks:lang';
const DIR: Record<Lang, 'rtl' | 'ltr'> = { he: 'rtl', en: 'ltr' };

export type Vars = Record<string, string | number>;
export type Table<K extends string> = Record<K, string>;

export function isLang(value: unknown): value is Lang {
  return typeof value === 'string' && (LANGS as readonly string[]).includes(value);
}

export function langDir(lang: Lang): 'rtl' | 'ltr' {
  return DIR[lang];
}

function readStoredLang(): Lang {
  try {
    const stored = localStorage.getItem(LANG_KEY);
    return isLang(stored) ? stored : 'he';
  } catch {
    return 'he'; // storage disabled (privacy mode): the default
  }
}

let current: Lang = readStoredLang();

export function getLang(): Lang {
  return current;
}

/** Switch the page's language, remember it, and tell every view to re-render. */
export function setLang(lang: Lang): void {
  current = lang;
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    /* a preference is best effort */
  }
  document.documentElement.lang = lang;
  document.documentElement.dir = DIR[lang];
  document.dispatchEvent(new CustomEvent(LANG_CHANGE_EVENT, { detail: { lang } }));
}

/** The language for an element: the nearest `lang` attribute we speak, else the preference. */
export function langOf(element: Element): Lang {
  const tagged = element.closest('[lang]')?.getAttribute('lang')?.slice(0, 2).toLowerCase();
  return isLang(tagged) ? tagged : current;
}

export function interpolate(template: string, vars: Vars = {}): string {
  return template.replace(/\{(\w+)\}/g, (match, name: string) => (name in vars ? String(vars[name]) : match));
}

/** A typed `t(key, vars, lang)`: unknown keys do not compile, missing translations fall back to Hebrew. */
export function translator<K extends string>(tables: Record<Lang, Table<K>>) {
  const lookup = tables as Record<Lang, Partial<Record<string, string>>>;
  return (key: K, vars?: Vars, lang: Lang = current): string => interpolate(lookup[lang][key] ?? lookup.he[key] ?? key, vars);
}

// Intl objects are costly to build and cards re-render several times a second: cache them.
const formatCache = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat>();
function cached<T extends Intl.NumberFormat | Intl.DateTimeFormat>(key: string, make: () => T): T {
  let format = formatCache.get(key);
  if (!format) {
    format = make();
    formatCache.set(key, format);
  }
  return format as T;
}

export function formatNumber(n: number | null | undefined, lang: Lang = current): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return cached(`${lang}:int`, () => new Intl.NumberFormat(lang, { maximumFractionDigits: 0 })).format(n);
}

export function formatDecimal(n: number, lang: Lang = current): string {
  const digits = n < 10 ? 1 : 0; // 2.5/s is informative, 1234.5/s is noise
  return cached(
    `${lang}:dec${digits}`,
    () => new Intl.NumberFormat(lang, { maximumFractionDigits: digits, minimumFractionDigits: 0 }),
  ).format(n);
}

export function formatDateTime(iso: string | null | undefined, lang: Lang = current): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return cached(`${lang}:dt`, () => new Intl.DateTimeFormat(lang, { dateStyle: 'short', timeStyle: 'medium' })).format(d);
}

const UNITS: Record<Lang, { h: string; m: string; s: string }> = {
  he: { h: '{n} שע׳', m: '{n} דק׳', s: '{n} שנ׳' },
  en: { h: '{n}h', m: '{n}m', s: '{n}s' },
};

/** "1h 2m", "2m 5s", "40s": two units at most; more precision in an ETA is false precision. */
export function formatDuration(seconds: number, lang: Lang = current): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const unit = (which: 'h' | 'm' | 's', n: number) => interpolate(UNITS[lang][which], { n: formatNumber(n, lang) });
  const parts = h ? [unit('h', h), m ? unit('m', m) : ''] : m ? [unit('m', m), s ? unit('s', s) : ''] : [unit('s', s)];
  return parts.filter(Boolean).join(' ');
}
