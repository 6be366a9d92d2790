// What the card and the API client say, in both languages. Labels for task types, statuses and
// priorities are `Record`s over the spec's values: a new one does not compile until translated.

import type { Priority, TaskStatus, TaskType } from '../api/types.js';
import { getLang, translator, type Lang } from './core.js';

const he = {
  'card.title': '{type} #{id}',
  'card.processed': 'עובדו',
  'card.of': 'מתוך',
  'card.success': 'הצליחו',
  'card.failed': 'נכשלו',
  'card.cancelled': 'בוטלו',
  'card.skipped': 'דולגו',
  'card.rate': '{rate} פריטים/שנ׳',
  'card.eta': 'זמן משוער לסיום: {eta}',
  'card.stalled': 'תקוע: אין התקדמות כבר {duration}',
  'card.loading': 'טוען...',
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
  'card.delivery': 'מסירה',
  'card.deliveryAccepted': 'התקבלו',
  'card.deliveryDelivered': 'נמסרו',
  'card.deliveryRead': 'נקראו',
  'card.deliveryFailed': 'נכשלו במסירה',
  'card.deliveryPending': 'ממתינות',
  'card.deliveryUnconfirmed': 'לא ידוע אם נשלחו',
  'card.deliveryResent': 'נשלחו שוב',

  'error.network': 'אין תקשורת עם השרת.',
  'error.timeout': 'השרת לא הגיב בזמן.',
  'error.forbidden': 'אין הרשאה לפעולה זו.',
  'error.notFound': 'לא נמצא.',
  'error.conflict': 'לא ניתן כעת: {detail}',
  'error.unavailable': 'השירות אינו זמין כרגע: {detail}',
  'error.http': 'שגיאה {status}: {detail}',
};

export type CardMessageKey = keyof typeof he;

const en: Record<CardMessageKey, string> = {
  'card.title': '{type} #{id}',
  'card.processed': 'Processed',
  'card.of': 'of',
  'card.success': 'Succeeded',
  'card.failed': 'Failed',
  'card.cancelled': 'Cancelled',
  'card.skipped': 'Skipped',
  'card.rate': '{rate} items/s',
  'card.eta': 'ETA: {eta}',
  'card.stalled': 'Stalled: no progress for {duration}',
  'card.loading': 'Loading...',
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
  'card.delivery': 'Delivery',
  'card.deliveryAccepted': 'Accepted',
  'card.deliveryDelivered': 'Delivered',
  'card.deliveryRead': 'Read',
  'card.deliveryFailed': 'Not delivered',
  'card.deliveryPending': 'Pending',
  'card.deliveryUnconfirmed': 'Send unconfirmed',
  'card.deliveryResent': 'Re-sent',

  'error.network': 'Cannot reach the server.',
  'error.timeout': 'The server did not answer in time.',
  'error.forbidden': 'You are not allowed to do this.',
  'error.notFound': 'Not found.',
  'error.conflict': 'Not possible right now: {detail}',
  'error.unavailable': 'The service is unavailable: {detail}',
  'error.http': 'Error {status}: {detail}',
};

export const t = translator<CardMessageKey>({ he, en });

const TYPE_LABELS: Record<Lang, Record<TaskType, string>> = {
  he: { broadcast: 'תפוצת WhatsApp', receipt_delete: 'מחיקת קבלות', receipt_sync: 'סנכרון קבלות מ-Gmail', audience_import: 'ייבוא קהל' },
  en: { broadcast: 'WhatsApp broadcast', receipt_delete: 'Receipt deletion', receipt_sync: 'Gmail receipt sync', audience_import: 'Audience import' },
};

const STATUS_LABELS: Record<Lang, Record<TaskStatus, string>> = {
  he: {
    awaiting_approval: 'ממתין לאישור',
    scheduled: 'מתוזמן',
    running: 'בתהליך',
    paused: 'מושהה',
    completed: 'הושלם',
    cancelled: 'בוטל',
    failed: 'נכשל',
    expired: 'פג תוקף',
  },
  en: {
    awaiting_approval: 'Awaiting approval',
    scheduled: 'Scheduled',
    running: 'Running',
    paused: 'Paused',
    completed: 'Completed',
    cancelled: 'Cancelled',
    failed: 'Failed',
    expired: 'Expired',
  },
};

const PRIORITY_LABELS: Record<Lang, Record<Priority, string>> = {
  he: { high: 'גבוהה', normal: 'רגילה', low: 'נמוכה' },
  en: { high: 'high', normal: 'normal', low: 'low' },
};

// A value this build does not know yet (a newer server) shows as itself rather than blank.
export const typeLabel = (type: string, lang: Lang = getLang()): string =>
  (TYPE_LABELS[lang] as Record<string, string>)[type] ?? type;
export const statusLabel = (status: string, lang: Lang = getLang()): string =>
  (STATUS_LABELS[lang] as Record<string, string>)[status] ?? status;
export const priorityLabel = (priority: string, lang: Lang = getLang()): string =>
  (PRIORITY_LABELS[lang] as Record<string, string>)[priority] ?? priority;
