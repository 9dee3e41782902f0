// The app's callbacks: their declarations (what `_dash-dependencies` answers) and their execution for
// `_dash-update-component`, with the request body checked so that a bad one gets a 4xx and never reaches the data.
import { html, type Component } from './components.js';
import { NO_SELECTION } from './layout.js';
import { MONTHS, PAYROLL, isRegion, monthlySales } from './sales-data.js';

interface PropRef {
  id: string;
  property: string;
}

interface Callback {
  output: PropRef;
  inputs: PropRef[];
  /** Computes the output from the inputs' values (in declaration order); throws BadCallback for bad values. */
  compute(values: unknown[]): unknown;
}

export class BadCallback extends Error {
  constructor(
    message: string,
    readonly status: 400 | 404 = 400,
  ) {
    super(message);
  }
}

function salesFigure(region: unknown): unknown {
  if (!isRegion(region)) throw new BadCallback('region.value is not a known region');
  return {
    data: [{ type: 'bar', name: region, x: MONTHS, y: monthlySales(region), marker: { color: '#3b6ea5' } }],
    layout: {
      title: { text: `${region}: monthly sales (k$)` },
      height: 360,
      margin: { l: 48, r: 16, t: 56, b: 40 },
    },
  };
}

/** The clicked bar's month in the chosen region, with its sales; null before any click. */
function selection(clickData: unknown, region: unknown): unknown {
  if (!isRegion(region)) throw new BadCallback('region.value is not a known region');
  const points = isRecord(clickData) && Array.isArray(clickData.points) ? clickData.points : [];
  const month = isRecord(points[0]) ? points[0].x : undefined;
  const index = MONTHS.indexOf(String(month));
  if (clickData !== null && clickData !== undefined && index === -1) throw new BadCallback('chart.clickData names no month');
  return index === -1 ? null : { region, month: MONTHS[index], sales: monthlySales(region)[index] };
}

function selectionText(data: unknown): string {
  if (!isRecord(data) || typeof data.region !== 'string' || typeof data.month !== 'string' || typeof data.sales !== 'number') return NO_SELECTION;
  return `Selected: ${data.region}, ${data.month}: ${data.sales} k$`;
}

function payrollTable(clicks: unknown): Component {
  if (clicks !== null && clicks !== undefined && !Number.isInteger(clicks)) {
    throw new BadCallback('show-payroll.n_clicks is not a count');
  }
  const cell = (tag: 'Th' | 'Td', text: string): Component => html(tag, { children: text });
  return html('Table', {
    id: 'payroll-table',
    children: [
      html('Thead', { children: html('Tr', { children: ['Name', 'Role', 'Salary'].map((head) => cell('Th', head)) }) }),
      html('Tbody', {
        children: PAYROLL.map((row) =>
          html('Tr', {
            children: [cell('Td', row.name), cell('Td', row.role), cell('Td', `$${row.salary.toLocaleString('en-US')}`)],
          }),
        ),
      }),
    ],
  });
}

const CALLBACKS: Callback[] = [
  {
    output: { id: 'chart', property: 'figure' },
    inputs: [{ id: 'region', property: 'value' }],
    compute: ([region]) => salesFigure(region),
  },
  {
    output: { id: 'selection', property: 'data' },
    inputs: [{ id: 'chart', property: 'clickData' }, { id: 'region', property: 'value' }],
    compute: ([clickData, region]) => selection(clickData, region),
  },
  {
    output: { id: 'selection-text', property: 'children' },
    inputs: [{ id: 'selection', property: 'data' }],
    compute: ([data]) => selectionText(data),
  },
  {
    // The gateway's policy refuses exactly this output to non-admins; the app itself serves anyone who reaches it.
    output: { id: 'payroll', property: 'children' },
    inputs: [{ id: 'show-payroll', property: 'n_clicks' }],
    compute: ([clicks]) => payrollTable(clicks),
  },
];

const outputKey = ({ id, property }: PropRef): string => `${id}.${property}`;

/** The callback declarations in the shape dash-renderer reads from `_dash-dependencies`. */
export const DEPENDENCIES = CALLBACKS.map((callback) => ({
  output: outputKey(callback.output),
  inputs: callback.inputs,
  state: [],
  clientside_function: null,
  prevent_initial_call: false,
}));

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value the request gives for one declared input (undefined when the renderer had none). */
function inputValue(inputs: unknown[], ref: PropRef): unknown {
  const entry = inputs.find((input) => isRecord(input) && input.id === ref.id && input.property === ref.property);
  if (!isRecord(entry)) throw new BadCallback(`input ${outputKey(ref)} is missing`);
  return entry.value;
}

/**
 * Runs the callback a `_dash-update-component` body asks for (body fields: output, outputs, inputs, state,
 * changedPropIds) and returns the renderer's multi-output answer `{multi: true, response: {id: {prop: value}}}`.
 */
export function runCallback(body: unknown): unknown {
  if (!isRecord(body) || typeof body.output !== 'string' || !Array.isArray(body.inputs)) {
    throw new BadCallback('expected a JSON object with "output" (string) and "inputs" (array)');
  }
  const callback = CALLBACKS.find((candidate) => outputKey(candidate.output) === body.output);
  if (callback === undefined) throw new BadCallback('no callback has this output', 404);
  const inputs = body.inputs;
  const value = callback.compute(callback.inputs.map((ref) => inputValue(inputs, ref)));
  return { multi: true, response: { [callback.output.id]: { [callback.output.property]: value } } };
}
