/* A learner: /ui/learners/{sourcedId} reads /ui/api/learners/{sourcedId} (the Redis read
 * models) and refreshes every 10 s. */
'use strict';

(() => {
  const {el, text, state, rows, td, number, barChart, getJSON, detail} = xp;
  const PREFIX = '/ui/learners/';
  const REFRESH_MS = 10000;
  const raw = window.location.pathname.startsWith(PREFIX) ? window.location.pathname.slice(PREFIX.length) : '';
  let user = '';
  try { user = decodeURIComponent(raw); } catch (e) { user = raw; }

  async function load() {
    const result = await getJSON('/ui/api/learners/' + encodeURIComponent(user));
    if (result.ok) {
      render(result.body);
      state('ok', '');
    } else if (result.status === 401 || result.status === 403) {
      window.location.assign('/ui/login?next=' + encodeURIComponent(window.location.pathname));
      return;
    } else if (result.status === 404) {
      document.getElementById('learner').hidden = true;
      state('empty', `Learner “${user}” is unknown: the read models hold no XP, attempt or banking decision for this sourcedId. Check the spelling; a learner appears once their first attempt or fact is processed.`);
    } else if (result.status === 503) {
      state('error', `The read models (Redis) cannot answer now: ${detail(result)}. Retrying every 10 s…`);
    } else if (result.status === 0) {
      state('error', 'No xpbank process answers here: the worker (or xpbank api) serving this page stopped. Retrying every 10 s…');
    } else {
      state('error', `Could not load the learner: ${detail(result)}. Retrying every 10 s…`);
    }
    setTimeout(load, REFRESH_MS);
  }

  function render(view) {
    document.getElementById('learner').hidden = false;
    text('learner-id', view.userSourcedId);
    document.title = `xpbank · ${view.userSourcedId}`;
    const banked = Object.values(view.banked).reduce((a, b) => a + b, 0);
    const dates = Object.keys(view.xp.byDate);
    text('total-xp', number(view.xp.totalXp));
    text('banked-xp', number(banked));
    text('exercise-count', number(view.exercises.length));
    text('day-count', number(dates.length));

    const chart = document.getElementById('day-chart');
    document.getElementById('days-empty').hidden = dates.length > 0;
    if (dates.length) {
      const shown = dates.slice(-60);
      barChart(chart, shown, [{name: 'xp', cls: 'awards', values: shown.map((d) => view.xp.byDate[d])}],
        {title: 'XP per day (UTC dates)', tickEvery: Math.max(1, Math.ceil(shown.length / 8))});
    } else {
      chart.replaceChildren();
    }

    const resources = Object.entries(view.banked);
    rows(document.querySelector('#banked tbody'), resources, ([r, v]) => [td(r), td(number(v), 'num')]);
    document.getElementById('banked-empty').hidden = resources.length > 0;

    rows(document.querySelector('#exercises tbody'), view.exercises, (e) => [
      td(e.exerciseSourcedId), td(openText(e.open)), td(doneText(e.completed)),
      td(e.completed ? number(e.completed.exerciseXp) : '', 'num')]);
    document.getElementById('exercises-empty').hidden = view.exercises.length > 0;

    const explained = view.exercises.filter((e) => e.explanation && e.explanation.masteryEventId);
    document.getElementById('explanations').replaceChildren(...explained.map(explanation));
    document.getElementById('explanations-empty').hidden = explained.length > 0;
  }

  function openText(o) {
    if (!o) return '—';
    const of = o.totalQuestions === null || o.totalQuestions === undefined ? '' : ` of ${o.totalQuestions}`;
    return `attempt ${o.attempt}: ${o.answered}${of} answered, ${o.correct} correct` +
      (o.reported ? `, ${o.reported} reported` : '');
  }

  function doneText(d) {
    if (!d) return '—';
    return `attempt ${d.attempt}: ${d.correct}/${d.total} (${Math.round(d.accuracy * 10) / 10} %)` +
      (d.mastered ? ', mastered' : '');
  }

  function explanation(e) {
    const x = e.explanation;
    const total = x.resources.filter((r) => r.reason === 'awarded').reduce((a, r) => a + r.decision, 0);
    const start = x.windowStartsAfter ? `after exercise ${x.windowStartsAfter}` : 'at the start of the unit';
    const head = ['resource', 'kind', 'seconds ≤ T', 'minutes', 'cap', 'prior', 'xp', 'reason'];
    const numeric = new Set([2, 3, 4, 5, 6]);
    return el('article', {class: 'explain', 'data-exercise': e.exerciseSourcedId},
      el('h3', {}, `${e.exerciseSourcedId} `, el('span', {class: 'pill'}, `banked ${total} xp`)),
      el('p', {class: 'meta'}, `mastery ${x.masteryEventId} at T = ${x.decidedAt} · window starts ${start}`),
      e.rows.length
        ? el('table', {class: 'grid explain-table'},
          el('thead', {}, el('tr', {}, ...head.map((h, i) => el('th', numeric.has(i) ? {class: 'num'} : {}, h)))),
          el('tbody', {}, ...e.rows.map((r) => el('tr', r[7] === 'awarded' ? {class: 'awarded'} : {},
            ...r.map((cell, i) => td(cell, numeric.has(i) ? 'num' : null))))))
        : el('p', {class: 'empty'}, 'No resources between the previous exercise and this one.'),
      ...(x.anomalies || []).map((a) => el('p', {class: 'anomaly'}, `anomaly: ${a}`)),
      x.note ? el('p', {class: 'hint'}, x.note) : null);
  }

  if (user) {
    document.getElementById('search-id').value = user;
    state('loading', `Loading learner ${user}…`);
    load();
  } else {
    state('empty', 'Find a learner by sourcedId (the search field above) to see their XP, attempts and why each mastery banked what it banked.');
    document.getElementById('search-id').focus();
  }
})();
