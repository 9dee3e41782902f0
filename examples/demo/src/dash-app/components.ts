// Dash's wire format for components: the `{type, namespace, props}` JSON that dash-renderer turns into React
// elements, with builders for the two suites the app serves (dash-html-components and dash-core-components).

export interface Component {
  type: string;
  namespace: string;
  props: Record<string, unknown>;
}

/** An element of dash-html-components (`window.dash_html_components`), e.g. `html('Div', {...})`. */
export function html(type: string, props: Record<string, unknown> = {}): Component {
  return { type, namespace: 'dash_html_components', props };
}

/** A component of dash-core-components (`window.dash_core_components`), e.g. `dcc('Graph', {...})`. */
export function dcc(type: string, props: Record<string, unknown> = {}): Component {
  return { type, namespace: 'dash_core_components', props };
}
