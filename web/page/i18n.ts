// Static markup translated through attributes (re-applied on every language change):
//   data-i18n="key"                                  -> textContent
//   data-i18n-attr="placeholder:key,aria-label:key2" -> attributes

import { getLang, langDir } from '../src/i18n/core';
import { t, type PageMessageKey } from './messages';

// Keys come from markup, which the compiler cannot check: an unknown one shows as itself.
const translate = (key: string): string => t(key as PageMessageKey);

export function applyLang(root: Document = document): void {
  const lang = getLang();
  root.documentElement.lang = lang;
  root.documentElement.dir = langDir(lang);
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n]')) {
    el.textContent = translate(el.dataset.i18n ?? '');
  }
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n-attr]')) {
    for (const pair of (el.dataset.i18nAttr ?? '').split(',')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, translate(key));
    }
  }
  root.title = t('app.title');
}
