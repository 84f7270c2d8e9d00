/* The Events page (#/events): the newest events, live from the stream, filtered by kind and
 * by text; a run or a group of this site links to its page. */

import {state} from './state.js';
import {h, append, timeElement, badge} from './dom.js';
import {groupsHere} from './api.js';
import {dataTable, groupLink, runLink} from './widgets.js';

export function pageEvents(main) {
	const kind = h('select', {id: 'event-kind'},
		['all', 'point', 'state', 'step', 'error', 'info'].map((k) => h('option', {value: k, text: k === 'all' ? 'every kind' : k})));
	const text = h('input', {id: 'event-text', type: 'search', autocomplete: 'off'});
	const table = dataTable({
		caption: 'Events, newest first (live)',
		empty: 'No event matches.',
		id: 'events',
		key: (e) => e.id,
		columns: [
			{label: 'Time', cell: (e) => timeElement(e.time_ms)},
			{label: 'Kind', cell: (e) => e.kind},
			{label: 'Level', cell: (e) => badge(e.level)},
			{label: 'Object', cell: (e) => objectLink(e.object)},
			{label: 'Message', cell: (e) => h('span', {class: 'wrap', text: e.message || ''})},
		],
	});
	const count = h('p', {class: 'help', id: 'event-count'});
	const live = h('p', {class: 'visually-hidden', 'aria-live': 'polite', id: 'event-live'});
	append(main, h('h1', {text: 'Events'}),
		h('div', {class: 'filters', role: 'search', 'aria-label': 'Filter events'},
			h('div', {class: 'field'}, h('label', {for: 'event-kind', text: 'Kind'}), kind),
			h('div', {class: 'field'}, h('label', {for: 'event-text', text: 'Object or message contains'}), text)),
		count, live, table);

	function draw() {
		const wanted = kind.value, needle = text.value.trim().toLowerCase();
		const shown = state.events.filter((e) => (wanted === 'all' || e.kind === wanted) &&
			(!needle || `${e.object} ${e.message}`.toLowerCase().includes(needle))).slice(0, 200);
		table.update(shown);
		count.textContent = `${shown.length} of the ${state.events.length} newest events shown; new ones appear on top as they happen.`;
	}
	kind.addEventListener('change', draw);
	text.addEventListener('input', draw);
	return {
		update() {
			draw();
		},
		onEvents: draw,
		onEvent(event) {
			draw();
			live.textContent = `${event.kind}: ${event.object} ${event.message}`;
		},
	};
}

/* An event's object: a run or a group of this site is a link to its page. */
function objectLink(object) {
	const run = /^run (\d+)$/.exec(object || '');
	if (run)
		return runLink(run[1]);
	if (object && groupsHere().some((g) => g.name === object))
		return groupLink(object);
	return h('span', {class: 'wrap', text: object || ''});
}
