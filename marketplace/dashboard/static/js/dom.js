// DOM building without innerHTML: every value from the API becomes a text node, so nothing it
// contains can run as markup.

/**
 * An element: `h("a", {href: "/x", class: "y", on: {click: f}}, "text", child)`.
 * Attributes that are null, undefined or false are left out; `true` sets an empty attribute.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name === "className" ? "class" : name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Appends children: nodes, strings (as text), numbers; arrays are flattened; null is skipped. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces everything inside `parent`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** Makes `parent`'s children exactly `elements`, in order, moving only the nodes out of place:
 * a node already in its place is left alone, so it keeps focus and any handler's feedback. */
export function reconcile(parent, elements) {
  elements.forEach((element, index) => {
    const current = parent.children[index];
    if (current !== element) parent.insertBefore(element, current ?? null);
  });
  while (parent.children.length > elements.length) parent.lastElementChild.remove();
  return parent;
}

/** A table inside a horizontally scrollable, keyboard-focusable region (usable at 360px wide). */
export function table({ caption, columns, rows, label }) {
  const head = h("thead", {}, h("tr", {}, columns.map((column) =>
    h("th", { scope: "col", class: column.num ? "num" : null }, column.title))));
  const body = h("tbody", {}, rows);
  const element = h("table", {}, caption ? h("caption", {}, caption) : null, head, body);
  const wrap = h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label ?? caption }, element);
  return { wrap, body };
}

/** A row of cells; a cell is a node, a string, or {value, num} for a right-aligned figure. */
export function row(cells, props = {}) {
  return h("tr", props, cells.map((cell) => {
    if (cell && typeof cell === "object" && !(cell instanceof Node) && "value" in cell) {
      return h("td", { class: cell.num ? "num" : null }, cell.value);
    }
    return h("td", {}, cell);
  }));
}
