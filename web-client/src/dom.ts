/**
 * @module Small DOM helpers. The page has a handful of widgets, so a few lines of plain DOM code
 * replace a UI framework and its dependencies.
 */

type Attributes = Record<string, string | boolean | undefined>;

/** Creates an element; `true` sets a boolean attribute, `false`/`undefined` leave it out. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) {
      element.setAttribute(name, "");
    } else if (typeof value === "string") {
      element.setAttribute(name, value);
    }
  }
  element.append(...children);
  return element;
}

/** Finds an element the page's HTML must contain, with its type checked. */
export function byId<T extends HTMLElement>(
  root: Document,
  id: string,
  type: new (...args: never[]) => T,
): T {
  const element = root.getElementById(id);
  if (!(element instanceof type)) {
    throw new Error(`index.html lacks #${id} (${type.name})`);
  }
  return element;
}

const iconPaths = {
  copy: '<rect x="9" y="9" width="11" height="11" rx="2"/><path d="M5 15V5a2 2 0 0 1 2-2h8"/>',
  check: '<path d="m5 12 5 5 9-10"/>',
  retry: '<path d="M3 12a9 9 0 1 0 3-6.7L3 8"/><path d="M3 3v5h5"/>',
} as const;

/** An inline icon; decorative, so hidden from assistive technology. */
export function icon(name: keyof typeof iconPaths): SVGSVGElement {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  svg.innerHTML = iconPaths[name];
  return svg;
}
