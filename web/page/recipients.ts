// Turning what a user pastes or uploads into a list of phone strings.
//
// Numbers are passed on as typed (trimmed): the API normalises and validates them, and reports
// bad ones per item, so the page does not second-guess formats such as "050-123 4567".

const PHONE_HEADERS = new Set(['phone', 'phones', 'phone number', 'phone_number', 'mobile', 'טלפון', 'מספר טלפון', 'נייד']);

/** Textarea input: one per line, or separated by commas/semicolons (not spaces: "050 123 4567"). */
export function parseRecipientText(text: string): string[] {
  return text
    .split(/[\n\r,;]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Minimal RFC 4180 CSV parser: quoted fields, doubled quotes, CRLF. The delimiter is guessed
 * from the first line (comma, semicolon or tab: Excel in Hebrew locales often writes ';').
 */
export function parseCsv(text: string): string[][] {
  const src = text.replace(/^\uFEFF/, ''); // Excel's UTF-8 BOM
  const firstLine = src.slice(0, src.search(/\r?\n|$/));
  const delimiter = [',', ';', '\t'].reduce((best, d) => (count(firstLine, d) > count(firstLine, best) ? d : best), ',');

  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let inQuotes = false;
  for (let i = 0; i < src.length; i++) {
    const c = src.charAt(i);
    if (inQuotes) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else field += c;
    } else if (c === '"' && field === '') inQuotes = true;
    else if (c === delimiter) {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => r.some((cell) => cell.trim() !== ''));
}

function count(s: string, ch: string): number {
  return s.split(ch).length - 1;
}

const hasDigit = (s: string): boolean => /\d/.test(s);

/**
 * Phones from a CSV: the column named phone/טלפון (any case) if the header has one, else the
 * first column. A first row without a single digit in that column is a header and is skipped.
 */
export function recipientsFromCsv(text: string): string[] {
  const rows = parseCsv(text);
  if (!rows.length) return [];
  const first = rows[0] ?? [];
  const header = first.map((h) => h.trim().toLowerCase());
  let column = header.findIndex((h) => PHONE_HEADERS.has(h));
  let body = rows;
  if (column >= 0) body = rows.slice(1);
  else {
    column = 0;
    if (!hasDigit(first[0] ?? '')) body = rows.slice(1);
  }
  return body.map((r) => (r[column] ?? '').trim()).filter(Boolean);
}

/** Read an uploaded File as UTF-8 text (FileReader-free: File.text() is everywhere now). */
export async function recipientsFromFile(file: File | undefined): Promise<string[]> {
  if (!file) return [];
  return recipientsFromCsv(await file.text());
}
