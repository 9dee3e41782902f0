// The small JSON document every upstream answers with (about what a data app's API returns for one widget).
export const PAYLOAD = `${JSON.stringify({
  region: 'emea',
  period: '2026-Q3',
  currency: 'EUR',
  rows: [
    { product: 'alpha', units: 1280, revenue: 152340.5 },
    { product: 'beta', units: 864, revenue: 98112.25 },
    { product: 'gamma', units: 342, revenue: 40218.0 },
  ],
})}\n`;

/** The path every HTTP configuration is asked for (the gateways' last route matches it). */
export const REQUEST_PATH = '/sales/api/data.json';
