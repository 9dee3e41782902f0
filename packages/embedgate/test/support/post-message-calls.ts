// Reads the postMessage calls out of a built (minified) script, for the static checks of security case 106.

export interface PostMessageCall {
  text: string;
  /** what postMessage is called on, e.g. `window.parent`, `e.ports[0]?` */
  receiver: string;
  args: string[];
}

/** Every `x.postMessage(...)` call in (minified) JavaScript: its receiver and its top-level arguments as source text. */
export function postMessageCalls(code: string): PostMessageCall[] {
  const calls: PostMessageCall[] = [];
  for (const match of code.matchAll(/\bpostMessage\s*\(/g)) {
    const at = match.index ?? 0;
    const before = /([\w$]+(?:\??\.[\w$]+|\[[^\]]*\])*)\??\.$/.exec(code.slice(Math.max(0, at - 80), at));
    const receiver = before?.[1] ?? '';
    const start = at + match[0].length;
    const args: string[] = [];
    let depth = 0;
    let quote: string | undefined;
    let argStart = start;
    let i = start;
    for (; i < code.length; i++) {
      const c = code[i] as string;
      if (quote !== undefined) {
        if (c === '\\') i++;
        else if (c === quote) quote = undefined;
        continue;
      }
      if (c === '"' || c === "'" || c === '`') quote = c;
      else if (c === '(' || c === '[' || c === '{') depth++;
      else if (c === ')' || c === ']' || c === '}') {
        if (depth === 0) break;
        depth--;
      } else if (c === ',' && depth === 0) {
        args.push(code.slice(argStart, i).trim());
        argStart = i + 1;
      }
    }
    const last = code.slice(argStart, i).trim();
    if (last !== '' || args.length > 0) args.push(last);
    calls.push({ text: code.slice(at - (before?.[0].length ?? 0), i + 1), receiver, args });
  }
  return calls;
}
