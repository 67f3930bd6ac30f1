// Any path the dashboard does not know.

import { h, replace } from "../dom.js";

export function render({ main, setTitle }) {
  setTitle("Not found");
  replace(main, h("h1", {}, "Page not found"),
    h("p", {}, "There is no dashboard page at this address. ", h("a", { href: "/" }, "Go to the overview"), "."));
}
