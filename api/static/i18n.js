// Translations and locale-aware formatting.
//
// Hebrew (right-to-left) is the default; English is a toggle. The choice is a UI preference
// only, so it is the one thing besides task ids that goes into localStorage.
//
// Static markup is translated through attributes:
//   data-i18n="key"                      -> textContent
//   data-i18n-attr="placeholder:key,aria-label:key2" -> attributes
// Dynamic text (cards, messages) calls t() and re-renders on the `longtasks:langchange` event.

const LANG_KEY = 'longtasks:lang';
export const LANGS = /** @type {const} */ (['he', 'en']);
const DIR = { he: 'rtl', en: 'ltr' };

const MESSAGES = {
  he: {
    'app.title': 'משימות ארוכות',
    'app.skip': 'דילוג לרשימת המשימות',
    'lang.toggle': 'English',
    'lang.toggleLabel': 'Switch to English',
    'auth.signout': 'התנתקות',
    'auth.signinTitle': 'כניסה',
    'auth.tokenLabel': 'אסימון גישה (JWT)',
    'auth.tokenHelp': 'הדביקו את האסימון שקיבלתם. הוא נשמר רק בלשונית זו ונמחק בסגירתה.',
    'auth.signin': 'כניסה',
    'auth.invalid': 'האסימון אינו תקין: {reason}',
    'auth.expired': 'תוקף האסימון פג. יש להיכנס מחדש.',
    'auth.sessionEnded': 'ההרשאה נדחתה (401). יש להיכנס מחדש.',
    'auth.whoami': 'עסק {business} · {role}',
    'role.viewer': 'צופה',
    'role.operator': 'מפעיל',
    'role.admin': 'מנהל',
    'role.readOnly': 'להרשאת צופה אין אפשרות להפעיל או לבטל משימות.',

    'type.broadcast': 'תפוצת WhatsApp',
    'type.receipt_delete': 'מחיקת קבלות',
    'type.receipt_sync': 'סנכרון קבלות מ-Gmail',
    'type.all': 'כל הסוגים',

    'status.scheduled': 'מתוזמן',
    'status.running': 'בתהליך',
    'status.completed': 'הושלם',
    'status.cancelled': 'בוטל',
    'status.failed': 'נכשל',
    'status.all': 'כל המצבים',

    'priority.high': 'גבוהה',
    'priority.normal': 'רגילה',
    'priority.low': 'נמוכה',

    'start.title': 'הפעלת משימה',
    'start.submit': 'הפעלה',
    'start.submitting': 'שולח...',
    'start.started': 'משימה #{id} הופעלה.',
    'start.fixErrors': 'יש לתקן את השגיאות:',

    'broadcast.title': 'תפוצת WhatsApp',
    'broadcast.name': 'שם התפוצה',
    'broadcast.messageKind': 'סוג הודעה',
    'broadcast.kindText': 'טקסט חופשי',
    'broadcast.kindTemplate': 'תבנית מאושרת',
    'broadcast.text': 'תוכן ההודעה',
    'broadcast.templateName': 'שם התבנית',
    'broadcast.templateLanguage': 'שפת התבנית',
    'broadcast.templateParams': 'פרמטרים (אחד בכל שורה)',
    'broadcast.recipients': 'נמענים (מספר בכל שורה או מופרדים בפסיק)',
    'broadcast.recipientsFile': 'או קובץ CSV (עמודה ראשונה, או עמודה בשם phone / טלפון)',
    'broadcast.recipientCount': '{count} נמענים',
    'broadcast.startAt': 'מועד התחלה (לא חובה)',
    'broadcast.priority': 'עדיפות',
    'broadcast.noRecipients': 'לא נמצאו נמענים.',
    'broadcast.noName': 'יש להזין שם לתפוצה.',
    'broadcast.intake': 'נמענים שהתקבלו: {accepted}, לא תקינים: {invalid}, כפולים שהוסרו: {duplicates}.',
    'broadcast.noText': 'יש להזין תוכן הודעה.',
    'broadcast.noTemplate': 'יש להזין שם תבנית ושפה.',
    'broadcast.badStartAt': 'מועד ההתחלה אינו תקין.',
    'broadcast.fileError': 'לא ניתן לקרוא את הקובץ: {reason}',

    'sync.title': 'סנכרון קבלות מ-Gmail',
    'sync.since': 'מתאריך (לא חובה)',
    'sync.query': 'חיפוש Gmail (לא חובה)',

    'delete.title': 'מחיקת קבלות',
    'delete.mode': 'מה למחוק',
    'delete.modeIds': 'לפי מספרי קבלות',
    'delete.modeFilter': 'לפי מסנן',
    'delete.ids': 'מספרי קבלות (מופרדים בפסיק, רווח או שורה)',
    'delete.source': 'מקור',
    'delete.sourceAny': 'כל מקור',
    'delete.after': 'מתאריך',
    'delete.before': 'עד תאריך',
    'delete.confirmAll': 'אני מבין/ה שמסנן ריק מוחק את כל הקבלות',
    'delete.noIds': 'יש להזין מספר קבלה אחד לפחות.',
    'delete.badIds': 'מספרי קבלות לא תקינים: {ids}',
    'delete.emptyFilter': 'יש לבחור שדה מסנן אחד לפחות, או לאשר מחיקת כל הקבלות.',

    'list.title': 'משימות',
    'list.filterType': 'סוג',
    'list.filterStatus': 'מצב',
    'list.refresh': 'רענון',
    'list.more': 'עוד משימות',
    'list.loading': 'טוען...',
    'list.empty': 'אין משימות להצגה.',
    'list.showDismissed': 'הצגת משימות שהוסתרו ({count})',
    'list.liveStream': 'עדכונים חיים',
    'list.liveConnecting': 'מתחבר לעדכונים חיים…',
    'list.livePolling': 'עדכון כל כמה שניות (הזרם החי אינו זמין)',
    'list.liveOff': 'לא מחובר',
    'list.loadError': 'טעינת המשימות נכשלה: {reason}',

    'card.title': '{type} #{id}',
    'card.progress': 'התקדמות',
    'card.processed': 'עובדו',
    'card.of': 'מתוך',
    'card.success': 'הצליחו',
    'card.failed': 'נכשלו',
    'card.cancelled': 'בוטלו',
    'card.skipped': 'דולגו',
    'card.rate': '{rate} פריטים/שנ׳',
    'card.eta': 'זמן משוער לסיום: {eta}',
    'card.stalled': 'תקוע: אין התקדמות כבר {duration}',
    'card.cancel': 'ביטול',
    'card.cancelling': 'מבטל...',
    'card.dismiss': 'הסתרה',
    'card.delete': 'מחיקה',
    'card.deleteConfirm': 'למחוק? לחצו שוב',
    'card.deleting': 'מוחק...',
    'card.created': 'נוצרה {time}',
    'card.started': 'התחילה {time}',
    'card.completed': 'הסתיימה {time}',
    'card.startAt': 'מתוזמנת ל-{time}',
    'card.priority': 'עדיפות {priority}',
    'card.tracked': 'במעקב',
    'card.error': 'שגיאה: {message}',
    'card.actionFailed': 'הפעולה נכשלה: {reason}',
    'card.failures': 'פריטים שנכשלו ({count})',
    'card.failuresLoading': 'טוען פריטים שנכשלו...',
    'card.failuresEmpty': 'אין פריטים שנכשלו.',
    'card.failuresMore': 'עוד פריטים',
    'card.failuresCsv': 'ייצוא CSV',
    'card.colItem': 'פריט',
    'card.colReason': 'סיבה',
    'card.colCode': 'קוד',
    'card.colUpdated': 'עודכן',
    'card.terminalAnnounce': '{title}: {status}',

    'error.network': 'אין תקשורת עם השרת.',
    'error.timeout': 'השרת לא הגיב בזמן.',
    'error.forbidden': 'אין הרשאה לפעולה זו.',
    'error.notFound': 'לא נמצא.',
    'error.conflict': 'לא ניתן כעת: {detail}',
    'error.unavailable': 'השירות אינו זמין כרגע: {detail}',
    'error.http': 'שגיאה {status}: {detail}',

    'duration.h': '{n} שע׳',
    'duration.m': '{n} דק׳',
    'duration.s': '{n} שנ׳',
  },
  en: {
    'app.title': 'Long tasks',
    'app.skip': 'Skip to the task list',
    'lang.toggle': 'עברית',
    'lang.toggleLabel': 'עברית – מעבר לעברית',
    'auth.signout': 'Sign out',
    'auth.signinTitle': 'Sign in',
    'auth.tokenLabel': 'Access token (JWT)',
    'auth.tokenHelp': 'Paste the token you were given. It is kept in this tab only and forgotten when the tab closes.',
    'auth.signin': 'Sign in',
    'auth.invalid': 'That token is not valid: {reason}',
    'auth.expired': 'The token has expired. Please sign in again.',
    'auth.sessionEnded': 'The server refused the token (401). Please sign in again.',
    'auth.whoami': 'Business {business} · {role}',
    'role.viewer': 'viewer',
    'role.operator': 'operator',
    'role.admin': 'admin',
    'role.readOnly': 'The viewer role cannot start or cancel tasks.',

    'type.broadcast': 'WhatsApp broadcast',
    'type.receipt_delete': 'Receipt deletion',
    'type.receipt_sync': 'Gmail receipt sync',
    'type.all': 'All types',

    'status.scheduled': 'Scheduled',
    'status.running': 'Running',
    'status.completed': 'Completed',
    'status.cancelled': 'Cancelled',
    'status.failed': 'Failed',
    'status.all': 'All statuses',

    'priority.high': 'high',
    'priority.normal': 'normal',
    'priority.low': 'low',

    'start.title': 'Start a task',
    'start.submit': 'Start',
    'start.submitting': 'Sending...',
    'start.started': 'Task #{id} started.',
    'start.fixErrors': 'Please fix the following:',

    'broadcast.title': 'WhatsApp broadcast',
    'broadcast.name': 'Broadcast name',
    'broadcast.messageKind': 'Message kind',
    'broadcast.kindText': 'Free text',
    'broadcast.kindTemplate': 'Approved template',
    'broadcast.text': 'Message text',
    'broadcast.templateName': 'Template name',
    'broadcast.templateLanguage': 'Template language',
    'broadcast.templateParams': 'Parameters (one per line)',
    'broadcast.recipients': 'Recipients (one per line or comma separated)',
    'broadcast.recipientsFile': 'or a CSV file (first column, or a column named phone / טלפון)',
    'broadcast.recipientCount': '{count} recipients',
    'broadcast.startAt': 'Start at (optional)',
    'broadcast.priority': 'Priority',
    'broadcast.noRecipients': 'No recipients found.',
    'broadcast.noName': 'Please give the broadcast a name.',
    'broadcast.intake': 'Recipients accepted: {accepted}, invalid: {invalid}, duplicates dropped: {duplicates}.',
    'broadcast.noText': 'Please enter the message text.',
    'broadcast.noTemplate': 'Please enter the template name and language.',
    'broadcast.badStartAt': 'The start time is not valid.',
    'broadcast.fileError': 'Could not read the file: {reason}',

    'sync.title': 'Gmail receipt sync',
    'sync.since': 'Since (optional)',
    'sync.query': 'Gmail search (optional)',

    'delete.title': 'Delete receipts',
    'delete.mode': 'What to delete',
    'delete.modeIds': 'By receipt ids',
    'delete.modeFilter': 'By filter',
    'delete.ids': 'Receipt ids (separated by commas, spaces or lines)',
    'delete.source': 'Source',
    'delete.sourceAny': 'Any source',
    'delete.after': 'After',
    'delete.before': 'Before',
    'delete.confirmAll': 'I understand an empty filter deletes every receipt',
    'delete.noIds': 'Please enter at least one receipt id.',
    'delete.badIds': 'Invalid receipt ids: {ids}',
    'delete.emptyFilter': 'Choose at least one filter field, or confirm deleting every receipt.',

    'list.title': 'Tasks',
    'list.filterType': 'Type',
    'list.filterStatus': 'Status',
    'list.refresh': 'Refresh',
    'list.more': 'More tasks',
    'list.loading': 'Loading...',
    'list.empty': 'No tasks to show.',
    'list.showDismissed': 'Show hidden tasks ({count})',
    'list.liveStream': 'Live updates',
    'list.liveConnecting': 'Connecting to live updates…',
    'list.livePolling': 'Refreshing every few seconds (live stream unavailable)',
    'list.liveOff': 'Not connected',
    'list.loadError': 'Could not load tasks: {reason}',

    'card.title': '{type} #{id}',
    'card.progress': 'Progress',
    'card.processed': 'Processed',
    'card.of': 'of',
    'card.success': 'Succeeded',
    'card.failed': 'Failed',
    'card.cancelled': 'Cancelled',
    'card.skipped': 'Skipped',
    'card.rate': '{rate} items/s',
    'card.eta': 'ETA: {eta}',
    'card.stalled': 'Stalled: no progress for {duration}',
    'card.cancel': 'Cancel',
    'card.cancelling': 'cancelling...',
    'card.dismiss': 'Dismiss',
    'card.delete': 'Delete',
    'card.deleteConfirm': 'Delete? Click again',
    'card.deleting': 'Deleting...',
    'card.created': 'Created {time}',
    'card.started': 'Started {time}',
    'card.completed': 'Finished {time}',
    'card.startAt': 'Scheduled for {time}',
    'card.priority': '{priority} priority',
    'card.tracked': 'Tracked',
    'card.error': 'Error: {message}',
    'card.actionFailed': 'Action failed: {reason}',
    'card.failures': 'Failed items ({count})',
    'card.failuresLoading': 'Loading failed items...',
    'card.failuresEmpty': 'No failed items.',
    'card.failuresMore': 'More items',
    'card.failuresCsv': 'Export CSV',
    'card.colItem': 'Item',
    'card.colReason': 'Reason',
    'card.colCode': 'Code',
    'card.colUpdated': 'Updated',
    'card.terminalAnnounce': '{title}: {status}',

    'error.network': 'Cannot reach the server.',
    'error.timeout': 'The server did not answer in time.',
    'error.forbidden': 'You are not allowed to do this.',
    'error.notFound': 'Not found.',
    'error.conflict': 'Not possible right now: {detail}',
    'error.unavailable': 'The service is unavailable: {detail}',
    'error.http': 'Error {status}: {detail}',

    'duration.h': '{n}h',
    'duration.m': '{n}m',
    'duration.s': '{n}s',
  },
};

let current = readStoredLang();

function readStoredLang() {
  try {
    const stored = localStorage.getItem(LANG_KEY);
    return LANGS.includes(stored) ? stored : 'he';
  } catch {
    return 'he'; // storage disabled (privacy mode): fall back to the default
  }
}

export function getLang() {
  return current;
}

/** Translate `key`, filling `{name}` placeholders from `vars`. Unknown keys show as the key. */
export function t(key, vars = {}) {
  const template = MESSAGES[current][key] ?? MESSAGES.he[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** A translated enum value (`type.broadcast`), or the raw value for one this page does not know yet. */
export function label(prefix, value) {
  const key = `${prefix}.${value}`;
  return key in MESSAGES[current] ? t(key) : String(value ?? '');
}

/** Switch language: updates <html lang/dir>, static texts, and tells dynamic views to re-render. */
export function setLang(lang) {
  if (!LANGS.includes(lang)) return;
  current = lang;
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    /* preference is best effort */
  }
  applyLang();
  document.dispatchEvent(new CustomEvent('longtasks:langchange', { detail: { lang } }));
}

/** Apply the current language to <html> and every [data-i18n] element under `root`. */
export function applyLang(root = document) {
  const html = document.documentElement;
  html.lang = current;
  html.dir = DIR[current];
  translateTree(root);
}

export function translateTree(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(',')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
  if (root === document) document.title = t('app.title');
}

// Formatters are cached per language: constructing Intl objects on every render is slow
// with many cards updating several times a second.
const formatCache = new Map();
function cached(name, make) {
  const key = `${current}:${name}`;
  if (!formatCache.has(key)) formatCache.set(key, make(current));
  return formatCache.get(key);
}

export function formatNumber(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '–';
  return cached('int', (l) => new Intl.NumberFormat(l, { maximumFractionDigits: 0 })).format(n);
}

export function formatDecimal(n) {
  const digits = n < 10 ? 1 : 0; // 2.5/s is informative, 1234.5/s is noise
  return cached(`dec${digits}`, (l) =>
    new Intl.NumberFormat(l, { maximumFractionDigits: digits, minimumFractionDigits: 0 }),
  ).format(n);
}

export function formatDateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return cached('dt', (l) => new Intl.DateTimeFormat(l, { dateStyle: 'short', timeStyle: 'medium' })).format(d);
}

/** "1h 2m", "2m 5s", "40s" — two units at most; ETA precision beyond that is false precision. */
export function formatDuration(seconds) {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const unit = (key, n) => t(key, { n: formatNumber(n) });
  const parts = h
    ? [unit('duration.h', h), m && unit('duration.m', m)]
    : m
      ? [unit('duration.m', m), s && unit('duration.s', s)]
      : [unit('duration.s', s)];
  return parts.filter(Boolean).join(' ');
}
