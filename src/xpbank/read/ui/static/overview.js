/* The live overview: one server-sent event stream (/ui/api/events) pushes the whole
 * overview every 2 s and the newest awards and dead letters as they arrive. */
'use strict';

(() => {
  const {el, text, state, rows, td, learnerLink, clock, number, barChart, getJSON, detail} = xp;
  let source = null;
  let last = null;
  let lost = false;

  function connect() {
    source = new EventSource('/ui/api/events');
    source.addEventListener('overview', (event) => {
      lost = false;
      last = JSON.parse(event.data);
      render(last);
    });
    source.addEventListener('awards', (event) => {
      if (!last) return;
      const fresh = JSON.parse(event.data).reverse();
      last.live.awards = fresh.concat(last.live.awards).slice(0, 25);
      renderAwards(last.live.awards, new Set(fresh));
    });
    source.addEventListener('deadLetters', (event) => {
      if (!last) return;
      last.live.deadLetters = JSON.parse(event.data).reverse().concat(last.live.deadLetters).slice(0, 8);
      renderLetters(last.live);
    });
    source.onerror = async () => {
      lost = true;
      if (source.readyState === EventSource.CLOSED) {  // refused (not a lost connection): ask why
        source.close();
        const probe = await getJSON('/ui/api/overview');
        if (probe.status === 401 || probe.status === 403) {
          window.location.assign('/ui/login?next=' + encodeURIComponent('/ui/'));
          return;
        }
        state('error', probe.status === 0
          ? 'No xpbank process answers here: the worker (or xpbank api) serving this page stopped. Retrying…'
          : `The live stream was refused: ${detail(probe)}. Retrying…`);
        setTimeout(connect, 5000);
        return;
      }
      state('error', 'Lost the connection to this xpbank process (worker or xpbank api stopped or restarting). Reconnecting…');
    };
  }

  function render(o) {
    const live = o.live;
    const lagKnown = o.lag && !o.lag.error;
    const members = o.group && o.group.members ? o.group.members.length : null;
    text('awards-hour', number(live.totals.awards));
    text('facts-hour', number(live.totals.facts));
    text('dead-hour', number(live.totals.deadLetters));
    text('lag-total', lagKnown ? number(o.lag.total) : '—');
    text('members-count', members === null ? '—' : number(members));
    document.getElementById('lag-total').classList.toggle('bad', lagKnown && o.lag.total > 0);
    document.getElementById('dead-hour').classList.toggle('bad', live.totals.deadLetters > 0);
    text('live-state', live.state === 'live' ? 'live' : live.state);
    renderBanner(o);
    renderChart(live.series);
    renderAwards(live.awards, new Set());
    renderWorkers(o);
    renderLag(o.lag);
    renderLetters(live);
  }

  /* The one sentence that says what is going on, worst first. */
  function renderBanner(o) {
    const live = o.live;
    if (o.group && o.group.error && o.lag && o.lag.error) {
      state('error', `Kafka does not answer: ${o.lag.error}`);
    } else if (o.group && !o.group.error && o.group.members.length === 0) {
      state('warn', `No worker is running: consumer group ${o.group.group} has no members (state ${o.group.state}), so nothing is processed. Start one with xpbank worker.`);
    } else if (o.group && o.group.rebalancing) {
      state('warn', `The worker group is rebalancing (${o.group.state}): partitions are moving between workers.`);
    } else if (o.readModels && !o.readModels.ok) {
      state('error', `Redis (the read models) does not answer: ${o.readModels.error}. Decisions go on; learner pages wait.`);
    } else if (o.readModels && o.readModels.state !== 'ready') {
      state('warn', `Redis lost the read models: ${o.readModels.problem} Decisions go on; learner pages wait.`);
    } else if (live.state === 'error') {
      state('error', `The live figures stopped: ${live.problem}. Retrying…`);
    } else if (live.state === 'waiting for topics') {
      state('empty', `Waiting: ${live.problem}.`);
    } else if (live.state === 'catching up' || live.state === 'idle') {
      state('loading', 'Reading the last hour of awards, facts and dead letters…');
    } else if (live.totals.awards === 0 && live.totals.facts === 0) {
      state('empty', 'Live. Nothing happened in the last hour: no award, no fact.');
    } else {
      state('ok', '');
    }
  }

  function renderChart(series) {
    const labels = series.awards.map((_, i) => series.start + i * 60);
    barChart(document.getElementById('rate-chart'), labels, [
      {name: 'awards', cls: 'awards', values: series.awards},
      {name: 'facts', cls: 'facts', values: series.facts},
      {name: 'dead letters', cls: 'dead', values: series.dead},
    ], {title: 'awards, facts and dead letters per minute over the last hour',
      label: (t) => new Date(t * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'})});
  }

  function renderAwards(awards, fresh) {
    const tbody = document.querySelector('#awards tbody');
    rows(tbody, awards, (a) => [td(clock(a.at)), el('td', {}, learnerLink(a.user)), td(a.resource), td(a.exercise),
      td(a.xp, 'num'), td(a.deltaXp, 'num'), td(a.revision, 'num')]);
    awards.forEach((a, i) => { if (fresh.has(a)) tbody.children[i].classList.add('fresh'); });
    document.getElementById('awards-empty').hidden = awards.length > 0;
  }

  function fact(list, name, value, bad) {
    list.append(el('dt', {}, name), el('dd', bad ? {class: 'bad'} : {}, value));
  }

  function yesNo(v) { return v ? 'yes' : 'no'; }

  function renderWorkers(o) {
    const group = document.getElementById('group');
    group.replaceChildren();
    if (o.group.error) {
      fact(group, 'group', o.group.group || '—');
      fact(group, 'problem', o.group.error, true);
    } else {
      fact(group, 'group', o.group.group);
      fact(group, 'state', o.group.state, o.group.state !== 'Stable');
      fact(group, 'rebalancing', yesNo(o.group.rebalancing), o.group.rebalancing);
    }
    rows(document.querySelector('#members tbody'), (o.group.members || []),
      (m) => [td(m.name), td(m.partitions, 'num')]);

    const processList = document.getElementById('process');
    processList.replaceChildren();
    const p = o.process, e = p.engine;
    if (e) {
      fact(processList, 'worker', `${e.engine}${e.instance ? ' · ' + e.instance : ''}`);
      fact(processList, 'ready', yesNo(e.ready), !e.ready);
      fact(processList, 'rebalancing', yesNo(e.rebalancing), e.rebalancing);
      fact(processList, 'tables recovered', yesNo(e.tablesRecovered), !e.tablesRecovered);
      fact(processList, 'curriculum loaded', yesNo(e.curriculumLoaded), !e.curriculumLoaded);
      fact(processList, 'records in / out', `${number(e.recordsIn)} / ${number(e.recordsOut)}`);
      fact(processList, 'repairs: refetched records', number(e.refetched));
      fact(processList, 'repairs: stall restarts', number(e.stallRestarts));
      fact(processList, 'redelivered (skipped)', number(e.redelivered));
      fact(processList, 'projector restarts', number(e.projectorRestarts), e.projectorRestarts > 0);
    } else {
      fact(processList, 'serves', 'the API only (xpbank api): no engine here');
      fact(processList, 'ready', yesNo(p.health.ready), !p.health.ready);
    }

    const redis = document.getElementById('read-models');
    redis.replaceChildren();
    fact(redis, 'Redis', o.readModels.ok ? 'answers' : o.readModels.error, !o.readModels.ok);
    if (o.readModels.ok) {
      fact(redis, 'read models', o.readModels.state, o.readModels.state !== 'ready');
    }
    const pr = o.projector;
    fact(redis, 'projector lag', pr.error ? pr.error : number(pr.total), Boolean(pr.error) || pr.total > 0);
    renderSinks(o.sinks || []);
  }

  /* The write-back sinks (xpbank sink oneroster|caliper), as their consumer groups say. */
  function renderSinks(sinks) {
    rows(document.querySelector('#sinks tbody'), sinks, (s) => s.error
      ? [td(s.sink), td(`unknown: ${s.error}`, 'bad'), td('—', 'num'), td('—', 'num')]
      : [td(s.sink), td(s.status, s.status === 'stopped' && s.lag > 0 ? 'bad' : ''), td(number(s.members), 'num'),
        td(number(s.lag), s.lag > 0 ? 'num bad' : 'num')]);
  }

  function renderLag(lag) {
    const box = document.getElementById('lag');
    const problem = document.getElementById('lag-error');
    problem.hidden = !lag.error;
    problem.textContent = lag.error ? `Lag unknown: ${lag.error}` : '';
    text('lag-group', lag.group ? `group ${lag.group}` : '');
    if (lag.error) { box.replaceChildren(); return; }
    const open = new Set([...box.querySelectorAll('details[open]')].map((d) => d.dataset.topic));
    const blocks = Object.entries(lag.perTopic).map(([topic, total]) => {
      const parts = lag.partitions.filter((r) => r.topic === topic);
      const table = el('table', {class: 'grid compact'},
        el('thead', {}, el('tr', {}, el('th', {}, 'partition'), el('th', {class: 'num'}, 'log start'),
          el('th', {class: 'num'}, 'end'), el('th', {class: 'num'}, 'committed'), el('th', {class: 'num'}, 'lag'))),
        el('tbody', {}, ...parts.map((r) => el('tr', r.lag > 0 ? {class: 'behind'} : {},
          td(r.partition), td(number(r.start), 'num'), td(number(r.end), 'num'),
          td(r.committed === null ? 'none' : number(r.committed), 'num'), td(number(r.lag), 'num')))));
      const details = el('details', {'data-topic': topic, open: open.has(topic) || total > 0 ? '' : null},
        el('summary', {}, el('span', {class: 'topic'}, topic), ' ',
          el('span', {class: total > 0 ? 'pill bad' : 'pill'}, `lag ${number(total)}`),
          ` · ${parts.length} partitions`), table);
      return details;
    });
    box.replaceChildren(...blocks);
  }

  function renderLetters(live) {
    rows(document.querySelector('#dl-reasons tbody'), Object.entries(live.deadLettersByReason),
      ([reason, n]) => [td(reason), td(number(n), n > 0 ? 'num bad' : 'num')]);
    const list = document.getElementById('dl-latest');
    list.replaceChildren(...live.deadLetters.map((d) => el('li', {class: 'letter'},
      el('div', {class: 'letter-head'},
        el('span', {class: 'pill bad'}, d.reason), ' ',
        el('span', {class: 'where'}, `${d.topic} · partition ${d.partition ?? '—'} · offset ${d.offset ?? '—'}`), ' ',
        el('span', {class: 'when'}, clock(d.at))),
      el('div', {class: 'letter-detail'}, d.detail),
      d.key || d.eventId ? el('div', {class: 'letter-ids'}, d.key ? `key ${d.key}` : '', d.key && d.eventId ? ' · ' : '',
        d.eventId ? `event ${d.eventId}` : '') : null,
      el('pre', {class: 'payload', title: `payload (${d.payloadEncoding})`}, d.payload))));
    document.getElementById('dl-empty').hidden = live.deadLetters.length > 0;
  }

  connect();
})();
