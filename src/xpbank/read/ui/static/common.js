/* xpbank web page: helpers shared by the pages.
 * Every value from the server reaches the DOM as a text node (textContent, append of a
 * string): never as markup. Charts are SVG elements built the same way. */
'use strict';

const xp = (() => {
  const SVG = 'http://www.w3.org/2000/svg';

  /* el('td', {class: 'num'}, 'text', otherNode): attributes by setAttribute, children as
   * text nodes unless they are nodes already. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  function text(id, value) {
    const node = document.getElementById(id);
    if (node) node.textContent = value === null || value === undefined ? '' : String(value);
    return node;
  }

  /* The banner saying what is happening: kind is loading, ok, empty, warn or error. */
  function state(kind, message) {
    const node = document.getElementById('state');
    node.className = 'state ' + kind;
    node.textContent = message;
    node.hidden = kind === 'ok' && !message;
  }

  function rows(tbody, list, cells) {
    tbody.replaceChildren(...list.map((item) => el('tr', {}, ...cells(item))));
  }

  function td(value, cls) {
    return el('td', cls ? {class: cls} : {}, value === null || value === undefined ? '' : value);
  }

  function learnerLink(user) {
    return el('a', {href: '/ui/learners/' + encodeURIComponent(user)}, user);
  }

  function clock(seconds) {
    return new Date(seconds * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit'});
  }

  function number(n) {
    return typeof n === 'number' ? n.toLocaleString('en-US') : String(n === null || n === undefined ? '—' : n);
  }

  /* Bars over labelled slots. series: [{name, cls, values}] (the same length as labels);
   * several series are drawn side by side in each slot. */
  function barChart(container, labels, series, options) {
    const opts = Object.assign({height: 180, tickEvery: 10, label: (l) => l}, options || {});
    const width = 900, left = 44, bottom = 22, top = 8, right = 8;
    const plotW = width - left - right, plotH = opts.height - top - bottom;
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    const slot = plotW / Math.max(1, labels.length);
    const bar = Math.min(48, Math.max(1, (slot * 0.8) / series.length));
    const pad = (slot - bar * series.length) / 2;
    const chart = svg('svg', {viewBox: `0 0 ${width} ${opts.height}`, class: 'bars', role: 'img',
      'aria-label': opts.title || 'chart'});
    chart.append(svg('title', {}, opts.title || ''));
    for (const frac of max >= 2 ? [0, 0.5, 1] : [0, 1]) {
      const y = top + plotH * (1 - frac);
      chart.append(svg('line', {x1: left, x2: width - right, y1: y, y2: y, class: 'gridline'}));
      chart.append(svg('text', {x: left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end'},
        number(Math.round(max * frac))));
    }
    labels.forEach((label, i) => {
      series.forEach((s, k) => {
        const value = s.values[i] || 0;
        if (!value) return;
        const h = (plotH * value) / max;
        const rect = svg('rect', {x: left + i * slot + pad + k * bar, y: top + plotH - h,
          width: bar, height: Math.max(h, 1), class: 'bar ' + s.cls});
        rect.append(svg('title', {}, `${opts.label(label)}: ${value} ${s.name}`));
        chart.append(rect);
      });
      if (i % opts.tickEvery === 0 || i === labels.length - 1) {
        chart.append(svg('text', {x: left + i * slot + slot / 2, y: opts.height - 6, class: 'axis',
          'text-anchor': 'middle'}, opts.label(label)));
      }
    });
    container.replaceChildren(chart);
  }

  /* GET JSON: {ok, status, body}; status 0 when no server answered. */
  async function getJSON(url) {
    try {
      const response = await fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'},
        cache: 'no-store'});
      let body = null;
      try { body = await response.json(); } catch (e) { body = null; }
      return {ok: response.ok, status: response.status, body};
    } catch (e) {
      return {ok: false, status: 0, body: null};
    }
  }

  function detail(result) {
    return result.body && result.body.detail ? result.body.detail : `HTTP ${result.status}`;
  }

  return {el, svg, text, state, rows, td, learnerLink, clock, number, barChart, getJSON, detail};
})();
