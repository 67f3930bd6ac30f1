// Page routing with the History API: dashboard links change the page without a reload, and the
// back button, reloads and shared links work since the server answers the same shell at each path.

import { h, replace } from "./dom.js";

export class Router {
  /** `routes`: [[RegExp over the path, page module with `render(context)`], ...]. */
  constructor(routes, { main, notFound }) {
    this.routes = routes;
    this.main = main;
    this.notFound = notFound;
    this.current = null; // {controller, cleanup}
    this.first = true;
  }

  match(pathname) {
    for (const [pattern, page] of this.routes) {
      const found = pathname.match(pattern);
      if (found) return { page, params: found.slice(1).map(decodeURIComponent) };
    }
    return null;
  }

  start() {
    document.addEventListener("click", (event) => this.onClick(event));
    window.addEventListener("popstate", () => this.render());
    this.render();
  }

  onClick(event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href);
    if (url.origin !== window.location.origin || !this.match(url.pathname)) return;
    const here = window.location;
    if (url.hash && url.pathname === here.pathname && url.search === here.search) return; // "#main": the browser scrolls
    event.preventDefault();
    this.navigate(url.pathname + url.search + url.hash);
  }

  navigate(path, { replaceState = false } = {}) {
    if (replaceState) window.history.replaceState(null, "", path);
    else if (path !== window.location.pathname + window.location.search) window.history.pushState(null, "", path);
    this.render();
  }

  render() {
    if (this.current) {
      this.current.controller.abort();
      this.current.cleanup?.();
    }
    const controller = new AbortController();
    this.current = { controller, cleanup: null };
    const found = this.match(window.location.pathname);
    const page = found?.page ?? this.notFound;
    const section = page.section ?? null;
    for (const link of document.querySelectorAll("nav a[data-section]")) {
      if (link.dataset.section === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    replace(this.main, h("p", { class: "muted" }, "Loading…"));
    const context = {
      main: this.main,
      params: found?.params ?? [],
      query: new URLSearchParams(window.location.search),
      signal: controller.signal,
      router: this,
      setTitle: (title) => { document.title = `${title} · ComputeMarket`; },
    };
    const focus = !this.first;
    this.first = false;
    Promise.resolve(page.render(context)).then((cleanup) => {
      if (controller.signal.aborted) {
        cleanup?.();
        return;
      }
      this.current.cleanup = cleanup ?? null;
      if (focus) {
        // Keyboard and screen-reader users land on the new page's heading, as after a page load.
        const heading = this.main.querySelector("h1");
        if (heading) {
          heading.setAttribute("tabindex", "-1");
          heading.focus({ preventScroll: true });
        } else this.main.focus({ preventScroll: true });
        window.scrollTo(0, 0);
      }
    }).catch((error) => {
      if (controller.signal.aborted) return;
      replace(this.main, h("h1", {}, "Something went wrong"),
        h("p", { class: "alert", role: "alert", "data-level": "error" }, `This page could not be shown: ${error?.message ?? error}`));
    });
  }
}
