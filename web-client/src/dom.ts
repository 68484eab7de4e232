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
  edit: '<path d="M4 20h4L19 9a2.8 2.8 0 0 0-4-4L4 16Z"/><path d="m13.5 6.5 4 4"/>',
  trash:
    '<path d="M4 7h16M10 11v6M14 11v6M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12M9 7V4h6v3"/>',
  download: '<path d="M12 4v11M7 10l5 5 5-5M5 20h14"/>',
  sun: '<circle cx="12" cy="12" r="4"/><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4"/>',
  moon: '<path d="M20 14.5A8 8 0 0 1 9.5 4 8 8 0 1 0 20 14.5Z"/>',
  system: '<rect x="3" y="4" width="18" height="12" rx="2"/><path d="M8 20h8M12 16v4"/>',
} as const;

/** The icons `icon` draws. */
export type IconName = keyof typeof iconPaths;

/** An inline icon; decorative, so hidden from assistive technology. */
export function icon(name: IconName): SVGSVGElement {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  svg.innerHTML = iconPaths[name];
  return svg;
}

/**
 * A small button showing only an icon: `label` names it for assistive technology, `title` for
 * the pointer; `extraClass` lets tests and styles tell the buttons apart.
 */
export function smallIconButton(
  name: IconName,
  label: string,
  title: string,
  extraClass = "",
): HTMLButtonElement {
  const button = h("button", {
    type: "button",
    class: `icon-button icon-button--small${extraClass === "" ? "" : ` ${extraClass}`}`,
    "aria-label": label,
    title,
  });
  button.append(icon(name));
  return button;
}
