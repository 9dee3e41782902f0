// The dashboard's layout (what `_dash-layout` answers), built per request like a Dash layout function so that the
// "Signed in as" line shows the identity the gateway forwarded in X-Forwarded-User and X-Forwarded-Groups.
import { dcc, html, type Component } from './components.js';
import { signedInAs, type Identity } from '../shared/identity.js';
import { REGIONS } from './sales-data.js';

/** What the selection line says before a bar is clicked. */
export const NO_SELECTION = 'Click a bar to select a month.';

/** Text the payroll section keeps when its callback is refused (the gateway answers 403 to non-admins). */
export const PAYROLL_PLACEHOLDER = 'Payroll is visible to administrators only.';

export function buildLayout(identity: Identity): Component {
  return html('Div', {
    id: 'dashboard',
    style: { fontFamily: 'system-ui, sans-serif', maxWidth: '960px', margin: '0 auto', padding: '16px' },
    children: [
      html('H1', { id: 'title', children: 'Sales dashboard' }),
      html('P', { id: 'signed-in', children: signedInAs(identity) }),
      html('Label', { htmlFor: 'region', children: 'Region' }),
      dcc('Dropdown', {
        id: 'region',
        options: REGIONS.map((region) => ({ label: region, value: region })),
        value: REGIONS[0],
        clearable: false,
      }),
      dcc('Graph', { id: 'chart', config: { displayModeBar: false } }),
      // The clicked month, as data (what a host page can be told through the bridge) and as text.
      dcc('Store', { id: 'selection' }),
      html('P', { id: 'selection-text', children: NO_SELECTION }),
      html('Section', {
        id: 'payroll-section',
        children: [
          html('H2', { children: 'Payroll (admins only)' }),
          html('Button', { id: 'show-payroll', n_clicks: 0, children: 'Reload payroll' }),
          html('Div', { id: 'payroll', children: PAYROLL_PLACEHOLDER }),
        ],
      }),
    ],
  });
}
