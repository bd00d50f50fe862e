/*
 * Inbox CRM — local Gmail sidebar simulator.
 *
 * Plays the part of Gmail's add-on host: builds the event objects Google sends, POSTs them to the
 * service's real endpoints with development ID tokens minted by /dev/api/token, applies the
 * returned navigations to a card stack and renders google.apps.card.v1 cards.
 * Vanilla ES2020, no dependencies; the only global is window.simulator (for debugging and tests).
 */
(() => {
  "use strict";

  const TOAST_MS = 4000;
  const TOKEN_KEYS = /token/i;
  const NON_WIDGET_KEYS = new Set(["horizontalAlignment", "id", "visibility", "eventActions"]);
  const KNOWN_ICONS = {
    AIRPLANE: "✈", BOOKMARK: "🔖", BUS: "🚌", CAR: "🚗", CLOCK: "🕒",
    CONFIRMATION_NUMBER_ICON: "🎫", DOLLAR: "$", DESCRIPTION: "📄", EMAIL: "✉",
    EVENT_PERFORMER: "🎤", EVENT_SEAT: "💺", FLIGHT_ARRIVAL: "🛬", FLIGHT_DEPARTURE: "🛫",
    HOTEL: "🏨", HOTEL_ROOM_TYPE: "🛏", INVITE: "📨", MAP_PIN: "📍", MEMBERSHIP: "🪪",
    MULTIPLE_PEOPLE: "👥", OFFER: "🏷", PERSON: "👤", PHONE: "📞", RESTAURANT_ICON: "🍴",
    SHOPPING_CART: "🛒", STAR: "★", STORE: "🏬", TICKET: "🎟", TRAIN: "🚆",
    VIDEO_CAMERA: "📹", VIDEO_PLAY: "▶",
  };

  // ---------------------------------------------------------------- state

  const state = {
    config: null,
    user: "",
    messages: [],
    /** "homepage" | "message" | "compose" — what the add-on was opened for. */
    context: { kind: "homepage", message: null, toRecipients: [], ccRecipients: [] },
    /** Card stack: [{card, el, form}] — el/form are filled when first shown. */
    stack: [],
    inFlight: 0,
    generation: 0,
    lastEvent: null,
    lastResponse: null,
    lastRequest: null,
    rawOpen: false,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = value;
        else if (key === "dataset") Object.assign(node.dataset, value);
        else if (key.startsWith("on") && typeof value === "function") {
          node.addEventListener(key.slice(2), value);
        } else if (value === true) node.setAttribute(key, "");
        else node.setAttribute(key, String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // ------------------------------------------------------- HTML sanitizer

  const ALLOWED_TAGS = new Set(["B", "I", "U", "S", "BR", "FONT", "A"]);
  const DROP_WITH_CONTENT = new Set(["SCRIPT", "STYLE", "TEMPLATE", "IFRAME", "OBJECT", "NOSCRIPT"]);
  const SAFE_COLOR = /^(#[0-9a-f]{3,8}|[a-z]{3,20}|rgba?\([0-9.,\s%]+\))$/i;

  /** Card text with the formatting subset cards allow, as a DocumentFragment (never innerHTML). */
  function formatted(text) {
    const fragment = document.createDocumentFragment();
    if (text === undefined || text === null || text === "") return fragment;
    const doc = new DOMParser().parseFromString(`<body>${String(text)}</body>`, "text/html");
    const copy = (source, target) => {
      for (const node of source.childNodes) {
        if (node.nodeType === Node.TEXT_NODE) {
          target.append(document.createTextNode(node.nodeValue));
        } else if (node.nodeType === Node.ELEMENT_NODE) {
          const tag = node.tagName;
          if (DROP_WITH_CONTENT.has(tag)) continue;
          if (!ALLOWED_TAGS.has(tag)) {
            copy(node, target); // unknown tag: keep its text, drop the markup
            continue;
          }
          const out = document.createElement(tag.toLowerCase());
          if (tag === "FONT") {
            const color = (node.getAttribute("color") || "").trim();
            if (SAFE_COLOR.test(color)) out.style.color = color;
          } else if (tag === "A") {
            const href = (node.getAttribute("href") || "").trim();
            if (/^(https?:|mailto:)/i.test(href)) {
              out.setAttribute("href", href);
              out.setAttribute("target", "_blank");
              out.setAttribute("rel", "noopener noreferrer");
            }
          }
          if (tag !== "BR") copy(node, out);
          target.append(out);
        }
      }
    };
    copy(doc.body, fragment);
    return fragment;
  }

  // ------------------------------------------------------------ utilities

  function redact(value) {
    if (Array.isArray(value)) return value.map(redact);
    if (value && typeof value === "object") {
      const out = {};
      for (const [key, inner] of Object.entries(value)) {
        out[key] = TOKEN_KEYS.test(key) && typeof inner === "string" ? "<redacted>" : redact(inner);
      }
      return out;
    }
    return value;
  }

  function pretty(value) {
    try {
      return JSON.stringify(value, null, 2);
    } catch (err) {
      return String(value);
    }
  }

  function parseRecipients(text) {
    return String(text || "")
      .split(/[,;\n]/)
      .map((part) => {
        const angle = part.match(/<([^>]+)>/);
        return (angle ? angle[1] : part).trim();
      })
      .filter(Boolean);
  }

  function formatDate(value) {
    if (!value) return "";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    const now = new Date();
    if (date.toDateString() === now.toDateString()) {
      return date.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
    }
    if (date.getFullYear() === now.getFullYear()) {
      return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
    }
    return date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
  }

  const pad = (n) => String(n).padStart(2, "0");

  /** Fetch target for a service URL: same path on this page's origin when it is the service's. */
  function fetchTarget(url) {
    try {
      const target = new URL(url, window.location.href);
      const base = state.config && state.config.baseUrl ? new URL(state.config.baseUrl) : null;
      if (base && target.origin === base.origin && target.origin !== window.location.origin) {
        return window.location.origin + target.pathname + target.search;
      }
      return target.href;
    } catch (err) {
      return url;
    }
  }

  function serviceUrl(path) {
    const base = (state.config && state.config.baseUrl) || window.location.origin;
    return base.replace(/\/+$/, "") + path;
  }

  // ------------------------------------------------------ toasts, errors

  function toast(text) {
    const node = el("div", { class: "toast", role: "status" }, String(text));
    $("toast-host").append(node);
    window.setTimeout(() => {
      node.classList.add("toast-leaving");
      window.setTimeout(() => node.remove(), 300);
    }, TOAST_MS);
  }

  function showError(title, detail) {
    const host = $("error-host");
    host.textContent = "";
    const banner = el(
      "div",
      { class: "error-banner", role: "alert" },
      el("div", { class: "error-title" }, title),
      detail ? el("pre", { class: "error-detail" }, String(detail).slice(0, 4000)) : null,
      el("button", {
        type: "button",
        class: "icon-button error-dismiss",
        "aria-label": "Dismiss error",
        onclick: () => banner.remove(),
      }, "✕"),
    );
    host.append(banner);
    if (!state.stack.length) {
      const container = $("card-container");
      container.textContent = "";
      container.append(el("div", { class: "card-placeholder" }, "The add-on did not return a card."));
    }
  }

  function clearError() {
    $("error-host").textContent = "";
  }

  // ------------------------------------------------------------- busy UI

  /** Controls disabled because a request is in flight (restored even if their card was detached). */
  const busyDisabled = new Set();

  function setBusy(delta) {
    state.inFlight = Math.max(0, state.inFlight + delta);
    const busy = state.inFlight > 0;
    const sidebar = $("sidebar");
    sidebar.setAttribute("aria-busy", String(busy));
    sidebar.classList.toggle("busy", busy);
    $("spinner").hidden = !busy;
    $("progress").hidden = !busy;
    if (busy) {
      const controls = sidebar.querySelectorAll(
        "button, select, [role='button'], input[type='checkbox'], input[type='radio']",
      );
      for (const control of controls) {
        if (busyDisabled.has(control) || control.closest(".error-banner")) continue;
        if (control.disabled || control.getAttribute("aria-disabled") === "true") continue;
        busyDisabled.add(control);
        if (control.getAttribute("role") !== "button" && "disabled" in control) control.disabled = true;
        control.setAttribute("aria-disabled", "true");
      }
    } else {
      for (const control of busyDisabled) {
        if (control.getAttribute("role") !== "button" && "disabled" in control) control.disabled = false;
        control.removeAttribute("aria-disabled");
      }
      busyDisabled.clear();
    }
  }

  const isBusy = () => state.inFlight > 0;

  // ------------------------------------------------------------ raw panel

  function updateRaw() {
    if (!state.lastRequest) return;
    const req = state.lastRequest;
    $("raw-request-line").textContent = `POST ${req.url}`;
    $("raw-event").textContent = state.lastEvent ? pretty(state.lastEvent) : "(none)";
    $("raw-status").textContent = req.status === undefined ? "…" : `${req.status} ${req.statusText || ""} · ${req.ms} ms`;
    const body = state.lastResponse;
    $("raw-response").textContent = body === null || body === undefined
      ? req.bodyText || "(waiting)"
      : typeof body === "string" ? body : pretty(body);
  }

  function toggleRaw() {
    state.rawOpen = !state.rawOpen;
    $("raw-panel").hidden = !state.rawOpen;
    $("raw-toggle").setAttribute("aria-pressed", String(state.rawOpen));
    $("raw-toggle").classList.toggle("active", state.rawOpen);
  }

  // -------------------------------------------------------------- events

  function gmailObject() {
    const ctx = state.context;
    if (ctx.kind === "compose") {
      const open = !$("compose-box").hidden;
      return {
        toRecipients: open ? parseRecipients($("compose-to").value) : ctx.toRecipients,
        ccRecipients: open ? parseRecipients($("compose-cc").value) : ctx.ccRecipients,
      };
    }
    if (ctx.message) {
      return {
        messageId: ctx.message.id,
        threadId: ctx.message.threadId,
        accessToken: `dev-access-token-${ctx.message.id}`,
      };
    }
    return null;
  }

  function buildEvent(tokens, formInputs, parameters) {
    let tz = "UTC";
    try {
      tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (err) { /* keep UTC */ }
    const event = {
      commonEventObject: {
        hostApp: "GMAIL",
        platform: "WEB",
        userLocale: navigator.language || "en",
        timeZone: { id: tz, offset: -new Date().getTimezoneOffset() * 60000 },
        formInputs: formInputs || {},
        parameters: parameters || {},
      },
      authorizationEventObject: {
        userOAuthToken: (state.config && state.config.oauthToken) || "",
        userIdToken: tokens.userIdToken,
        systemIdToken: tokens.systemIdToken,
      },
    };
    const gmail = gmailObject();
    if (gmail) event.gmail = gmail;
    return event;
  }

  async function getJson(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    const text = await response.text();
    if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status} ${response.statusText}\n${text}`);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new Error(`GET ${path}: not JSON\n${text}`);
    }
  }

  async function mintTokens(audience) {
    const response = await fetch("/dev/api/token", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ audience, user: state.user }),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`Could not mint tokens: HTTP ${response.status} ${response.statusText}\n${text}`);
    }
    const tokens = JSON.parse(text);
    if (!tokens.systemIdToken || !tokens.userIdToken) throw new Error(`Token endpoint answered without tokens\n${text}`);
    return tokens;
  }

  /**
   * POST one event. kind "trigger" resets the stack before applying the answer and supersedes
   * any request in flight; "universal" and "callback" apply navigations to the current stack.
   */
  async function send(url, { kind, parameters, formInputs }) {
    const generation = kind === "callback" ? state.generation : ++state.generation;
    setBusy(+1);
    const started = performance.now();
    const request = { url, status: undefined };
    try {
      const tokens = await mintTokens(url);
      const event = buildEvent(tokens, formInputs, parameters);
      if (generation !== state.generation) return;
      state.lastRequest = request;
      state.lastEvent = redact(event);
      state.lastResponse = null;
      updateRaw();
      const response = await fetch(fetchTarget(url), {
        method: "POST",
        headers: {
          Authorization: `Bearer ${tokens.systemIdToken}`,
          "Content-Type": "application/json",
          Accept: "application/json",
        },
        body: JSON.stringify(event),
      });
      const text = await response.text();
      if (generation !== state.generation) return;
      request.status = response.status;
      request.statusText = response.statusText;
      request.ms = Math.round(performance.now() - started);
      request.bodyText = text;
      let body;
      try {
        body = JSON.parse(text);
      } catch (err) {
        body = undefined;
      }
      state.lastResponse = body === undefined ? text : body;
      updateRaw();
      const path = new URL(url, window.location.href).pathname;
      if (!response.ok) {
        showError(`HTTP ${response.status} ${response.statusText} from POST ${path}`, text || "(empty body)");
        return;
      }
      if (body === undefined || body === null || typeof body !== "object") {
        showError(`POST ${path} answered ${response.status} with a body that is not JSON`, text || "(empty body)");
        return;
      }
      clearError();
      applyResponse(body, kind, path);
    } catch (err) {
      if (generation !== state.generation) return;
      request.status = request.status === undefined ? "network error" : request.status;
      updateRaw();
      showError(`Request to ${url} failed`, err && err.message ? err.message : String(err));
    } finally {
      setBusy(-1);
    }
  }

  function findHostAppAction(body) {
    return (
      (body.renderActions && body.renderActions.hostAppAction) ||
      body.hostAppAction ||
      (body.renderActions && body.renderActions.action && body.renderActions.action.hostAppAction) ||
      (body.action && body.action.hostAppAction) ||
      null
    );
  }

  function applyResponse(body, kind, path) {
    const action = (body.renderActions && body.renderActions.action) || body.action || null;
    const hostAppAction = findHostAppAction(body);
    if (!action && !hostAppAction) {
      showError(`POST ${path} answered without "action" or "renderActions"`, pretty(body));
      return;
    }
    if (hostAppAction) applyHostAppAction(hostAppAction);
    if (!action) return;
    const navigations = Array.isArray(action.navigations) ? action.navigations : [];
    if (kind === "trigger" && navigations.length) state.stack = [];
    for (const nav of navigations) applyNavigation(nav);
    if (navigations.length) showTop();
    if (action.notification && action.notification.text) toast(action.notification.text);
    if (action.link && action.link.url) window.open(action.link.url, "_blank", "noopener");
    if (kind === "trigger" && !state.stack.length) {
      showError(`POST ${path} answered without a card to show`, pretty(body));
    }
  }

  function applyNavigation(nav) {
    if (!nav || typeof nav !== "object") return;
    if (nav.pushCard) {
      state.stack.push({ card: nav.pushCard });
    } else if (nav.updateCard) {
      if (state.stack.length) state.stack[state.stack.length - 1] = { card: nav.updateCard };
      else state.stack.push({ card: nav.updateCard });
    } else if (nav.pop) {
      if (state.stack.length > 1) state.stack.pop();
    } else if (nav.popToRoot) {
      state.stack.length = Math.min(state.stack.length, 1);
    } else if (nav.popToCard) {
      const index = state.stack.map((entry) => entry.card && entry.card.name).lastIndexOf(nav.popToCard);
      if (index >= 0) state.stack.length = index + 1;
      else toast(`popToCard: no card named "${nav.popToCard}" on the stack`);
    } else {
      toast(`Unsupported navigation: ${Object.keys(nav).join(", ")}`);
    }
  }

  function applyHostAppAction(hostAppAction) {
    const markup = hostAppAction.gmailAction && hostAppAction.gmailAction.updateDraftActionMarkup;
    if (!markup) {
      toast(`Unsupported host app action: ${Object.keys(hostAppAction).join(", ")}`);
      return;
    }
    openCompose(false);
    const body = $("compose-body");
    if (markup.updateBody && Array.isArray(markup.updateBody.insertContents)) {
      const text = markup.updateBody.insertContents
        .map((item) => {
          if (item.contentType === "TEXT") return item.content || "";
          const doc = new DOMParser().parseFromString(item.content || "", "text/html");
          return doc.body.textContent || "";
        })
        .join("");
      const type = markup.updateBody.type || "IN_PLACE_INSERT";
      if (type === "INSERT_AT_START") body.value = text + body.value;
      else if (type === "INSERT_AT_END") body.value += text;
      else body.setRangeText(text, body.selectionStart, body.selectionEnd, "end");
    }
    if (markup.updateSubject) $("compose-subject").value = markup.updateSubject.subject || "";
    const setList = (field, key, listKey) => {
      if (markup[key]) $(field).value = (markup[key][listKey] || []).join(", ");
    };
    setList("compose-to", "updateToRecipients", "toRecipients");
    setList("compose-cc", "updateCcRecipients", "ccRecipients");
    toast("Draft updated by the add-on");
  }

  // ---------------------------------------------------- card stack / UI

  function showTop() {
    const container = $("card-container");
    container.textContent = "";
    const top = state.stack[state.stack.length - 1];
    $("back-button").hidden = state.stack.length <= 1;
    if (!top) {
      container.append(el("div", { class: "card-placeholder" }, "No card."));
      return;
    }
    if (!top.el) {
      const rendered = renderCard(top.card);
      top.el = rendered.el;
      top.form = rendered.form;
    }
    container.append(top.el);
    container.scrollTop = 0;
  }

  function goBack() {
    if (isBusy() || state.stack.length <= 1) return;
    state.stack.pop();
    showTop();
  }

  function currentFormInputs() {
    const top = state.stack[state.stack.length - 1];
    const inputs = {};
    if (!top || !top.form) return inputs;
    for (const collect of top.form) {
      const entry = collect();
      if (entry) inputs[entry[0]] = entry[1];
    }
    return inputs;
  }

  function paramMap(list) {
    const map = {};
    if (Array.isArray(list)) {
      for (const item of list) if (item && item.key !== undefined) map[String(item.key)] = String(item.value ?? "");
    } else if (list && typeof list === "object") {
      for (const [key, value] of Object.entries(list)) map[key] = String(value);
    }
    return map;
  }

  function runAction(action, extraParams) {
    if (isBusy()) return; // ignore double clicks and clicks while a request is in flight
    if (!action || !action.function) {
      toast("This action has no function URL");
      return;
    }
    const formInputs = currentFormInputs();
    const required = Array.isArray(action.requiredWidgets) ? action.requiredWidgets : [];
    const missing = required.filter((name) => {
      const entry = formInputs[name];
      if (!entry) return true;
      if (entry.stringInputs) return !entry.stringInputs.value.some((v) => v !== "");
      return false;
    });
    if (missing.length) {
      toast(`Required: ${missing.join(", ")}`);
      return;
    }
    const parameters = Object.assign(paramMap(action.parameters), extraParams || {});
    send(action.function, { kind: "callback", parameters, formInputs });
  }

  /** Handle an OnClick: action, openLink, openDynamicLinkAction, card, overflowMenu. */
  function handleOnClick(onClick, extraParams, anchor) {
    if (!onClick) return;
    if (onClick.action) runAction(onClick.action, extraParams);
    else if (onClick.openDynamicLinkAction) runAction(onClick.openDynamicLinkAction, extraParams);
    else if (onClick.openLink && onClick.openLink.url) window.open(onClick.openLink.url, "_blank", "noopener");
    else if (onClick.card) {
      if (isBusy()) return;
      state.stack.push({ card: onClick.card });
      showTop();
    } else if (onClick.overflowMenu) openOverflowMenu(onClick.overflowMenu, anchor);
    else toast(`Unsupported onClick: ${Object.keys(onClick).join(", ")}`);
  }

  function openOverflowMenu(menu, anchor) {
    const existing = document.querySelector(".overflow-menu");
    if (existing) existing.remove();
    const list = el("div", { class: "overflow-menu", role: "menu" });
    for (const item of menu.items || []) {
      list.append(el("button", {
        type: "button",
        role: "menuitem",
        class: "overflow-item",
        disabled: item.disabled || undefined,
        onclick: () => {
          list.remove();
          handleOnClick(item.onClick);
        },
      }, item.text || ""));
    }
    (anchor && anchor.parentNode ? anchor.parentNode : $("card-container")).append(list);
    setTimeout(() => document.addEventListener("click", () => list.remove(), { once: true }), 0);
  }

  // ------------------------------------------------------- card renderer

  function renderCard(card) {
    const form = [];
    const root = el("div", { class: "card", "data-card-name": (card && card.name) || "" });
    if (!card || typeof card !== "object") {
      root.append(unknownWidget("card (not an object)"));
      return { el: root, form };
    }
    const header = card.header;
    const actions = Array.isArray(card.cardActions) ? card.cardActions : [];
    if (header || actions.length) root.append(renderHeader(header || {}, actions));
    const body = el("div", { class: "card-body" });
    (card.sections || []).forEach((section, index) => body.append(renderSection(section, form, index)));
    root.append(body);
    if (card.fixedFooter) root.append(renderFooter(card.fixedFooter));
    const known = new Set(["header", "sections", "fixedFooter", "cardActions", "name", "peekCardHeader", "displayStyle", "sectionDividerStyle"]);
    for (const key of Object.keys(card)) {
      if (!known.has(key)) body.append(unknownWidget(`card.${key}`));
    }
    return { el: root, form };
  }

  function renderHeader(header, actions) {
    const node = el("div", { class: "card-header" });
    if (header.imageUrl) {
      node.append(el("img", {
        class: `card-header-image${header.imageType === "CIRCLE" ? " circle" : ""}`,
        src: header.imageUrl,
        alt: header.imageAltText || "",
      }));
    }
    const titles = el("div", { class: "card-header-text" });
    if (header.title) titles.append(el("h2", { class: "card-title" }, header.title));
    if (header.subtitle) titles.append(el("div", { class: "card-subtitle" }, header.subtitle));
    node.append(titles);
    if (actions.length) {
      const menu = el("div", { class: "card-actions-menu", role: "menu", hidden: true });
      const toggle = el("button", {
        type: "button",
        class: "icon-button card-actions-toggle",
        "aria-label": "More card actions",
        "aria-haspopup": "menu",
        "aria-expanded": "false",
        onclick: () => {
          menu.hidden = !menu.hidden;
          toggle.setAttribute("aria-expanded", String(!menu.hidden));
        },
      }, "⋮");
      for (const cardAction of actions) {
        menu.append(el("button", {
          type: "button",
          role: "menuitem",
          class: "card-action",
          onclick: () => {
            menu.hidden = true;
            toggle.setAttribute("aria-expanded", "false");
            handleOnClick(cardAction.onClick);
          },
        }, cardAction.actionLabel || "(action)"));
      }
      node.append(el("div", { class: "card-actions" }, toggle, menu));
    }
    return node;
  }

  function renderSection(section, form, index) {
    const node = el("section", { class: "card-section" });
    if (!section || typeof section !== "object") {
      node.append(unknownWidget(`section ${index}`));
      return node;
    }
    if (section.header) node.append(el("div", { class: "section-header" }, formatted(section.header)));
    const widgets = Array.isArray(section.widgets) ? section.widgets : [];
    const rendered = widgets.map((widget) => renderWidget(widget, form));
    if (section.collapsible) {
      const visibleCount = Math.max(0, Number(section.uncollapsibleWidgetsCount) || 0);
      rendered.slice(0, visibleCount).forEach((w) => node.append(w));
      const rest = rendered.slice(visibleCount);
      if (rest.length) {
        const hidden = el("div", { class: "section-collapsed", hidden: true }, rest);
        const toggle = el("button", {
          type: "button",
          class: "section-toggle",
          "aria-expanded": "false",
        }, "Show more");
        toggle.addEventListener("click", () => {
          hidden.hidden = !hidden.hidden;
          toggle.textContent = hidden.hidden ? "Show more" : "Show less";
          toggle.setAttribute("aria-expanded", String(!hidden.hidden));
        });
        node.append(hidden, toggle);
      }
    } else {
      rendered.forEach((w) => node.append(w));
    }
    return node;
  }

  function renderFooter(footer) {
    const node = el("div", { class: "card-footer" });
    if (footer.secondaryButton) node.append(renderButton(footer.secondaryButton, "footer-secondary"));
    if (footer.primaryButton) node.append(renderButton(footer.primaryButton, "footer-primary", true));
    return node;
  }

  function unknownWidget(key) {
    return el("div", { class: "widget unknown-widget", role: "note" }, `Unsupported widget: ${key}`);
  }

  function widgetKind(widget) {
    if (!widget || typeof widget !== "object") return null;
    const keys = Object.keys(widget).filter((key) => !NON_WIDGET_KEYS.has(key));
    return keys.length ? keys[0] : null;
  }

  const WIDGETS = {
    decoratedText: renderDecoratedText,
    textParagraph: (w) => el("div", { class: "text-paragraph formatted" }, formatted(w.text)),
    buttonList: renderButtonList,
    textInput: renderTextInput,
    selectionInput: renderSelectionInput,
    dateTimePicker: renderDateTimePicker,
    divider: () => el("hr", { class: "divider" }),
    image: renderImage,
    grid: renderGrid,
    columns: renderColumns,
    chipList: renderChipList,
  };

  function renderWidget(widget, form) {
    const kind = widgetKind(widget);
    if (!kind) return unknownWidget("(empty widget)");
    const renderer = WIDGETS[kind];
    if (!renderer) return unknownWidget(kind);
    let inner;
    try {
      inner = renderer(widget[kind] || {}, form);
    } catch (err) {
      return el("div", { class: "widget unknown-widget", role: "note" }, `Unsupported widget: ${kind} (render error: ${err.message})`);
    }
    const align = widget.horizontalAlignment ? ` align-${String(widget.horizontalAlignment).toLowerCase()}` : "";
    return el("div", { class: `widget widget-${kind}${align}`, "data-widget": kind }, inner);
  }

  function renderIcon(icon, className) {
    if (!icon || typeof icon !== "object") return null;
    if (icon.iconUrl) {
      return el("img", { class: `${className} icon-image`, src: icon.iconUrl, alt: icon.altText || "" });
    }
    const name = icon.knownIcon || (icon.materialIcon && icon.materialIcon.name) || "";
    const glyph = KNOWN_ICONS[name] || "•";
    return el("span", {
      class: className,
      "aria-hidden": icon.altText ? undefined : "true",
      "aria-label": icon.altText || undefined,
      title: icon.altText || name,
      "data-icon": name,
    }, glyph);
  }

  function makeClickable(node, onClick, extraParams) {
    node.classList.add("clickable");
    node.setAttribute("role", "button");
    node.setAttribute("tabindex", "0");
    const fire = (event) => {
      if (event.target.closest("button, input, select, textarea, a") && event.target !== node) return;
      if (node.getAttribute("aria-disabled") === "true") return;
      handleOnClick(onClick, extraParams, node);
    };
    node.addEventListener("click", fire);
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        fire(event);
      }
    });
  }

  function renderDecoratedText(w, form) {
    const row = el("div", { class: "decorated-text" });
    const icon = renderIcon(w.startIcon || w.icon, "dt-icon");
    if (icon) row.append(icon);
    const body = el("div", { class: "dt-body" });
    if (w.topLabel) body.append(el("div", { class: "dt-top formatted" }, formatted(w.topLabel)));
    body.append(el("div", { class: `dt-text formatted${w.wrapText === false ? " nowrap" : ""}` }, formatted(w.text ?? "")));
    if (w.bottomLabel) body.append(el("div", { class: "dt-bottom formatted" }, formatted(w.bottomLabel)));
    row.append(body);
    const endIcon = renderIcon(w.endIcon, "dt-end-icon");
    if (endIcon) row.append(endIcon);
    if (w.button) row.append(el("div", { class: "dt-control" }, renderButton(w.button)));
    if (w.switchControl) row.append(el("div", { class: "dt-control" }, renderSwitchControl(w.switchControl, w.text, form)));
    if (w.onClick) makeClickable(row, w.onClick);
    return row;
  }

  function renderSwitchControl(sc, label, form) {
    const input = el("input", {
      type: "checkbox",
      class: sc.controlType === "CHECKBOX" || sc.controlType === "CHECK_BOX" ? "checkbox" : "switch",
      role: sc.controlType === "CHECKBOX" || sc.controlType === "CHECK_BOX" ? undefined : "switch",
      name: sc.name || undefined,
      value: sc.value ?? "",
      "aria-label": label ? new DOMParser().parseFromString(String(label), "text/html").body.textContent : sc.name,
    });
    input.checked = Boolean(sc.selected);
    if (sc.name) {
      form.push(() => [sc.name, { stringInputs: { value: input.checked ? [String(sc.value ?? "true")] : [] } }]);
    }
    if (sc.onChangeAction) input.addEventListener("change", () => runAction(sc.onChangeAction));
    return input;
  }

  function renderButtonList(w) {
    const node = el("div", { class: "button-list" });
    for (const button of w.buttons || []) node.append(renderButton(button));
    return node;
  }

  function renderButton(button, extraClass, primary) {
    const filled = button.type === "FILLED" || button.type === "FILLED_TONAL" || (primary && !button.type);
    const classes = ["btn", "card-button"];
    if (filled) classes.push(button.type === "FILLED_TONAL" ? "btn-tonal" : "btn-filled");
    if (button.type === "BORDERLESS") classes.push("btn-borderless");
    if (extraClass) classes.push(extraClass);
    const icon = renderIcon(button.icon, "btn-icon");
    const node = el("button", {
      type: "button",
      class: classes.join(" "),
      disabled: button.disabled || undefined,
      "aria-label": !button.text && button.altText ? button.altText : undefined,
      title: button.altText || undefined,
    }, icon, button.text ? el("span", { class: "btn-text" }, button.text) : null);
    const color = button.color;
    if (filled && color && typeof color === "object") {
      const c = (v) => Math.round(Math.max(0, Math.min(1, Number(v) || 0)) * 255);
      node.style.background = `rgb(${c(color.red)}, ${c(color.green)}, ${c(color.blue)})`;
      node.style.borderColor = node.style.background;
    }
    node.addEventListener("click", () => handleOnClick(button.onClick, undefined, node));
    return node;
  }

  function fieldLabel(text, forId) {
    return el("label", { class: "field-label", for: forId }, text);
  }

  let uid = 0;
  const nextId = (prefix) => `${prefix}-${++uid}`;

  function renderTextInput(w, form) {
    const id = nextId("ti");
    const multi = w.type === "MULTIPLE_LINE";
    const label = w.label || w.hintText || w.name || "";
    const input = el(multi ? "textarea" : "input", {
      id,
      class: "text-input",
      name: w.name || undefined,
      "aria-label": label,
      type: multi ? undefined : "text",
      rows: multi ? 3 : undefined,
      autocomplete: "off",
    });
    input.value = w.value ?? "";
    const node = el("div", { class: `field${multi ? " field-multiline" : ""}` });
    if (w.label) node.append(fieldLabel(w.label, id));
    node.append(input);
    const suggestions = w.initialSuggestions && Array.isArray(w.initialSuggestions.items) ? w.initialSuggestions.items : [];
    if (suggestions.length && !multi) {
      const listId = nextId("sugg");
      input.setAttribute("list", listId);
      node.append(el("datalist", { id: listId }, suggestions.map((s) => el("option", { value: s.text || "" }))));
    }
    if (w.hintText) node.append(el("div", { class: "hint" }, w.hintText));
    if (w.name) form.push(() => [w.name, { stringInputs: { value: [input.value] } }]);
    if (w.onChangeAction) input.addEventListener("change", () => runAction(w.onChangeAction));
    return node;
  }

  function renderSelectionInput(w, form) {
    const type = w.type || "CHECK_BOX";
    const items = Array.isArray(w.items) ? w.items : [];
    const label = w.label || w.name || "";
    const node = el("div", { class: `field selection selection-${type.toLowerCase().replace(/_/g, "-")}` });
    let collect;
    if (type === "DROPDOWN" || type === "MULTI_SELECT") {
      const id = nextId("sel");
      const select = el("select", {
        id,
        class: "select-input",
        name: w.name || undefined,
        "aria-label": label,
        multiple: type === "MULTI_SELECT" || undefined,
        size: type === "MULTI_SELECT" ? Math.min(Math.max(items.length, 2), 6) : undefined,
      });
      items.forEach((item) => {
        const option = el("option", { value: item.value ?? "" }, item.text ?? item.value ?? "");
        option.selected = Boolean(item.selected);
        select.append(option);
      });
      if (w.label) node.append(fieldLabel(w.label, id));
      node.append(select);
      collect = () => Array.from(select.selectedOptions).map((o) => o.value);
      if (w.onChangeAction) select.addEventListener("change", () => runAction(w.onChangeAction));
    } else {
      const group = el("div", {
        class: "choice-group",
        role: type === "RADIO_BUTTON" ? "radiogroup" : "group",
        "aria-label": label,
      });
      if (w.label) node.append(el("div", { class: "field-label" }, w.label));
      const groupName = w.name || nextId("group");
      const inputs = items.map((item) => {
        const input = el("input", {
          type: type === "RADIO_BUTTON" ? "radio" : "checkbox",
          class: type === "SWITCH" ? "switch" : undefined,
          role: type === "SWITCH" ? "switch" : undefined,
          name: groupName,
          value: item.value ?? "",
        });
        input.checked = Boolean(item.selected);
        if (w.onChangeAction) input.addEventListener("change", () => runAction(w.onChangeAction));
        group.append(el("label", { class: "choice" }, input, el("span", { class: "choice-text" }, item.text ?? "")));
        return input;
      });
      node.append(group);
      collect = () => inputs.filter((i) => i.checked).map((i) => i.value);
    }
    if (w.name) form.push(() => [w.name, { stringInputs: { value: collect() } }]);
    return node;
  }

  function renderDateTimePicker(w, form) {
    const type = w.type || "DATE_AND_TIME";
    const id = nextId("dt");
    const inputType = type === "DATE_ONLY" ? "date" : type === "TIME_ONLY" ? "time" : "datetime-local";
    const label = w.label || w.name || "";
    const input = el("input", { id, type: inputType, class: "date-input", name: w.name || undefined, "aria-label": label });
    // Offset (minutes) used to show and read DATE_AND_TIME / TIME_ONLY values.
    const offsetMin = w.timezoneOffsetDate !== undefined && w.timezoneOffsetDate !== null
      ? Number(w.timezoneOffsetDate)
      : -new Date().getTimezoneOffset();
    const ms = w.valueMsEpoch !== undefined && w.valueMsEpoch !== null && w.valueMsEpoch !== "" ? Number(w.valueMsEpoch) : NaN;
    if (!Number.isNaN(ms)) {
      if (type === "DATE_ONLY") {
        const d = new Date(ms);
        input.value = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
      } else {
        const d = new Date(ms + offsetMin * 60000);
        const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
        input.value = type === "TIME_ONLY"
          ? time
          : `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${time}`;
      }
    }
    const node = el("div", { class: "field" });
    if (w.label) node.append(fieldLabel(w.label, id));
    node.append(input);
    if (w.name) {
      form.push(() => {
        const value = input.value;
        if (!value) return null; // Google leaves empty pickers out of formInputs
        if (type === "DATE_ONLY") {
          const [y, m, d] = value.split("-").map(Number);
          return [w.name, { dateInput: { msSinceEpoch: String(Date.UTC(y, m - 1, d)) } }];
        }
        if (type === "TIME_ONLY") {
          const [h, min] = value.split(":").map(Number);
          return [w.name, { timeInput: { hours: h, minutes: min } }];
        }
        const [datePart, timePart] = value.split("T");
        const [y, m, d] = datePart.split("-").map(Number);
        const [h, min] = (timePart || "00:00").split(":").map(Number);
        const utc = Date.UTC(y, m - 1, d, h, min) - offsetMin * 60000;
        return [w.name, { dateTimeInput: { msSinceEpoch: String(utc), hasDate: true, hasTime: true } }];
      });
    }
    if (w.onChangeAction) input.addEventListener("change", () => runAction(w.onChangeAction));
    return node;
  }

  function renderImage(w) {
    const img = el("img", { class: "card-image", src: w.imageUrl || "", alt: w.altText || "" });
    const node = el("div", { class: "image-wrap" }, img);
    if (w.onClick) makeClickable(node, w.onClick);
    return node;
  }

  function renderGrid(w) {
    const columns = Math.max(1, Number(w.columnCount) || 2);
    const node = el("div", { class: "grid" });
    if (w.title) node.append(el("div", { class: "grid-title" }, w.title));
    const items = el("div", { class: "grid-items" });
    items.style.gridTemplateColumns = `repeat(${columns}, minmax(0, 1fr))`;
    (w.items || []).forEach((item, index) => {
      const cell = el("div", { class: "grid-item", "data-grid-item-id": item.id || undefined });
      if (item.image && item.image.imageUri) {
        cell.append(el("img", { class: "grid-image", src: item.image.imageUri, alt: item.image.altText || "" }));
      }
      if (item.title) cell.append(el("div", { class: "grid-item-title" }, item.title));
      if (item.subtitle) cell.append(el("div", { class: "grid-item-subtitle" }, item.subtitle));
      if (w.onClick) {
        const extra = item.id !== undefined ? { grid_item_identifier: String(item.id) } : { grid_item_index: String(index) };
        makeClickable(cell, w.onClick, extra);
      }
      items.append(cell);
    });
    node.append(items);
    return node;
  }

  function renderColumns(w, form) {
    const node = el("div", { class: "columns" });
    for (const column of w.columnItems || []) {
      const col = el("div", { class: `column${column.horizontalSizeStyle === "FILL_MINIMUM_SPACE" ? " column-min" : ""}` });
      for (const widget of column.widgets || []) col.append(renderWidget(widget, form));
      node.append(col);
    }
    return node;
  }

  function renderChipList(w) {
    const node = el("div", { class: "chip-list" });
    for (const chip of w.chips || []) {
      const button = el("button", {
        type: "button",
        class: "chip",
        disabled: chip.disabled || undefined,
        "aria-label": !chip.label && chip.altText ? chip.altText : undefined,
      }, renderIcon(chip.icon, "btn-icon"), chip.label || "");
      button.addEventListener("click", () => handleOnClick(chip.onClick, undefined, button));
      node.append(button);
    }
    return node;
  }

  // ----------------------------------------------------------- inbox UI

  function renderInbox() {
    const list = $("message-list");
    list.textContent = "";
    const messages = state.messages;
    $("inbox-count").textContent = messages.length ? String(messages.length) : "";
    if (!messages.length) {
      list.append(el("li", { class: "inbox-empty" }, "The demo mailbox is empty."));
      return;
    }
    for (const message of messages) {
      const labels = Array.isArray(message.labels) ? message.labels : [];
      const unread = labels.includes("UNREAD");
      const chips = labels.filter((l) => !/^(INBOX|UNREAD|CATEGORY_|SENT|IMPORTANT$|STARRED$)/.test(l));
      const row = el("li", {
        class: `message-row${unread ? " unread" : ""}`,
        tabindex: "0",
        "data-message-id": message.id,
        "data-thread-id": message.threadId,
        "aria-current": state.context.message && state.context.message.id === message.id ? "true" : undefined,
      },
      el("span", { class: "mr-from", title: message.from || "" }, message.from || "(unknown sender)"),
      el("span", { class: "mr-main" },
        el("span", { class: "mr-subject" }, message.subject || "(no subject)"),
        chips.map((l) => el("span", { class: "label-chip" }, l.replace(/^Label_/, ""))),
        el("span", { class: "mr-snippet" }, message.snippet ? ` — ${message.snippet}` : "")),
      el("span", { class: "mr-date", title: message.date || "" }, formatDate(message.date)));
      row.addEventListener("click", () => openMessage(message));
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          openMessage(message);
        }
      });
      list.append(row);
    }
  }

  function renderReadingPane() {
    const pane = $("reading-pane");
    pane.textContent = "";
    const message = state.context.message;
    if (!message) {
      pane.append(el("div", { class: "rp-empty" }, "No message open. Pick one from the inbox, or use the add-on's homepage on the right."));
      return;
    }
    pane.append(
      el("h1", { class: "rp-subject" }, message.subject || "(no subject)"),
      el("div", { class: "rp-headers" },
        el("div", { class: "rp-from" }, el("span", { class: "rp-label" }, "From"), message.from || ""),
        el("div", { class: "rp-to" }, el("span", { class: "rp-label" }, "To"), message.to || ""),
        el("div", { class: "rp-date" }, el("span", { class: "rp-label" }, "Date"), message.date || "")),
      el("div", { class: "rp-snippet" }, message.snippet || ""),
      el("div", { class: "rp-note" }, `Message ${message.id} · thread ${message.threadId || "?"}`),
    );
  }

  function markActiveRow() {
    for (const row of document.querySelectorAll(".message-row")) {
      const active = state.context.message && row.dataset.messageId === state.context.message.id;
      if (active) {
        row.setAttribute("aria-current", "true");
        row.classList.remove("unread");
      } else row.removeAttribute("aria-current");
    }
  }

  // ------------------------------------------------------------- triggers

  function openMessage(message) {
    state.context = { kind: "message", message, toRecipients: [], ccRecipients: [] };
    if (!$("compose-box").hidden) $("compose-box").hidden = true;
    renderReadingPane();
    markActiveRow();
    send(serviceUrl("/gmail/message"), { kind: "trigger" });
  }

  function openHomepage() {
    state.context = { kind: "homepage", message: null, toRecipients: [], ccRecipients: [] };
    renderReadingPane();
    markActiveRow();
    send(serviceUrl("/homepage"), { kind: "trigger" });
  }

  function openSettings() {
    if (isBusy()) return;
    send(serviceUrl("/actions/settings"), { kind: "universal" });
  }

  function openCompose(focus = true) {
    $("compose-box").hidden = false;
    if (focus) $("compose-to").focus();
  }

  function runCompose() {
    const toRecipients = parseRecipients($("compose-to").value);
    const ccRecipients = parseRecipients($("compose-cc").value);
    state.context = { kind: "compose", message: null, toRecipients, ccRecipients };
    renderReadingPane();
    markActiveRow();
    send(serviceUrl("/gmail/compose"), { kind: "trigger" });
  }

  function rerunContext() {
    if (state.context.kind === "message" && state.context.message) openMessage(state.context.message);
    else if (state.context.kind === "compose") runCompose();
    else openHomepage();
  }

  // ---------------------------------------------------------------- boot

  function fillUsers() {
    const picker = $("user-picker");
    picker.textContent = "";
    const users = (state.config.users && state.config.users.length ? state.config.users : [state.user]).filter(Boolean);
    if (!users.includes(state.user) && state.user) users.unshift(state.user);
    for (const user of users) picker.append(el("option", { value: user }, user));
    picker.value = state.user;
    $("app-user").textContent = state.user;
  }

  function wire() {
    $("home-button").addEventListener("click", () => { if (!isBusy()) openHomepage(); });
    $("back-button").addEventListener("click", goBack);
    $("settings-button").addEventListener("click", openSettings);
    $("compose-button").addEventListener("click", () => {
      if (isBusy()) return;
      openCompose(true);
      runCompose();
    });
    $("compose-close").addEventListener("click", () => { $("compose-box").hidden = true; });
    $("compose-run").addEventListener("click", runCompose);
    $("raw-toggle").addEventListener("click", toggleRaw);
    $("user-picker").addEventListener("change", (event) => {
      state.user = event.target.value;
      $("app-user").textContent = state.user;
      rerunContext();
    });
  }

  async function boot() {
    wire();
    try {
      state.config = await getJson("/dev/api/config");
    } catch (err) {
      showError("Could not load the simulator configuration", err.message);
      return;
    }
    state.user = state.config.user || (state.config.users || [])[0] || "";
    fillUsers();
    try {
      const inbox = await getJson("/dev/api/inbox");
      state.messages = Array.isArray(inbox.messages) ? inbox.messages : [];
      renderInbox();
    } catch (err) {
      $("message-list").textContent = "";
      $("message-list").append(el("li", { class: "inbox-empty" }, "Could not load the demo mailbox."));
      showError("Could not load the demo mailbox", err.message);
    }
    openHomepage();
  }

  // --------------------------------------------------------- debug hook

  window.simulator = {
    state,
    /** Render a card JSON as the only card on the stack (debugging); returns its root element. */
    render(card) {
      state.stack = [{ card }];
      showTop();
      return state.stack[0].el;
    },
    /** Apply a service answer as if it had just arrived (tests of the navigation rules). */
    apply(body, kind = "callback") {
      applyResponse(body, kind, "(applied)");
      return state.stack.map((entry) => (entry.card && entry.card.name) || "");
    },
    get lastEvent() {
      return state.lastEvent;
    },
    get lastResponse() {
      return state.lastResponse;
    },
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
