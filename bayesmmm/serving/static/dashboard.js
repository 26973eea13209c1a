// The dashboard's budget form: POST /optimize and show the plan.
// Everything from the server is written with textContent (never as markup), so a channel
// name like <img src=x onerror=...> stays text. Loaded from /static under a CSP without inline scripts.
'use strict';
(() => {
  const fmt = v => (v === null || v === undefined || Number.isNaN(v)) ? '–'
    : Math.abs(v) >= 1000 ? v.toLocaleString(undefined, {maximumFractionDigits: 0})
    : Number(v).toPrecision(3);
  const pct = v => (v === null || v === undefined || Number.isNaN(v)) ? '–' : (100 * v).toFixed(1) + '%';
  const el = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  };
  const form = document.getElementById('opt-form');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = document.getElementById('opt-result'), info = document.getElementById('opt-summary');
    const body = {budget: Number(form.budget.value), weeks: Number(form.weeks.value), objective: form.objective.value};
    if (form.max_change.value !== '') body.max_change = Number(form.max_change.value) / 100;
    const button = form.querySelector('button');
    button.disabled = true;
    info.textContent = 'optimizing…';
    info.className = '';
    out.replaceChildren();
    try {
      const res = await fetch('optimize', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                           body: JSON.stringify(body)});
      const data = await res.json();
      if (!res.ok) {
        info.textContent = (data && data.message) || ('HTTP ' + res.status);
        info.className = 'error';
        return;
      }
      const s = data.summary, up = s.uplift_vs_current;
      info.replaceChildren(
        'Expected response ', el('b', fmt(s.response.optimized.mean)),
        ` vs ${fmt(s.response.current.mean)} with the current mix: uplift ${fmt(up.mean)} `
        + `(${pct(s.uplift_vs_current_pct)}), probability of a gain ${pct(up.prob_positive)}; `
        + `${pct(s.fraction_reallocated)} of the budget moves.`);
      const table = el('table');
      table.id = 'opt-table';
      const head = el('tr');
      for (const [label, num] of [['channel', false], ['current spend', true], ['optimized spend', true],
                                  ['change', true], ['response now', true], ['response optimized', true]]) {
        head.append(el('th', label, num ? 'num' : undefined));
      }
      table.append(head);
      for (const r of data.allocation) {
        const tr = el('tr');
        const optimized = el('td', undefined, 'num');
        optimized.append(el('b', fmt(r.optimized_spend)));
        tr.append(el('td', String(r.channel)), el('td', fmt(r.current_spend), 'num'), optimized,
                  el('td', pct(r.change_pct), 'num'), el('td', fmt(r.current_response_mean), 'num'),
                  el('td', fmt(r.optimized_response_mean), 'num'));
        table.append(tr);
      }
      out.append(table);
    } catch (err) {
      info.textContent = 'request failed: ' + err;
      info.className = 'error';
    } finally {
      button.disabled = false;
    }
  });
})();
