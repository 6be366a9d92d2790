// Reads its configuration from the URL (?api=<longtasks origin>&token=<JWT>&business=<id>),
// keeps the token for this tab, and mounts the app.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App, type HostConfig } from './App';

function readConfig(): HostConfig | null {
  const params = new URLSearchParams(window.location.search);
  const token = params.get('token') ?? sessionStorage.getItem('example:token');
  const apiBase = params.get('api') ?? sessionStorage.getItem('example:api');
  const businessId = Number(params.get('business') ?? sessionStorage.getItem('example:business'));
  if (!token || !apiBase || !Number.isSafeInteger(businessId)) return null;
  sessionStorage.setItem('example:token', token);
  sessionStorage.setItem('example:api', apiBase);
  sessionStorage.setItem('example:business', String(businessId));
  // This origin's /api gateway (vite.config.ts) forwards the seed page's requests with it, as
  // the seed's own backend authenticated them by session.
  document.cookie = `longtasks_token=${encodeURIComponent(token)}; path=/api; SameSite=Strict`;
  window.history.replaceState(null, '', window.location.pathname);
  return { apiBase, token, businessId };
}

const config = readConfig();
const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>{config ? <App config={config} /> : <p>Open with ?api=…&amp;token=…&amp;business=…</p>}</StrictMode>,
  );
}
