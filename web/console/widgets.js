/* Building blocks of the pages: sections, tables that keep their rows between updates
 * (invariant 4 in app.js), summaries, links, action buttons (invariant 3) and the confirmation
 * dialog. */

import {state} from './state.js';
import {h, append, clear, lagSince, tick, report} from './dom.js';

export function section(title, id, ...children) {
	return h('section', {'aria-labelledby': id}, h('h2', {id, text: title}), children);
}

function signature(node) {
	if (node === null || node === undefined)
		return '';
	if (node instanceof Element)
		return node.outerHTML;
	if (node instanceof Node)
		return node.textContent;
	return String(node);
}

function focusKey(element) {
	return element.getAttribute('data-focus') || element.getAttribute('href') || element.textContent;
}

/* dataTable({caption, columns: [{label, cell(item), num}], key(item), empty}): a table whose
 * update(items) keeps rows by key (invariant 4). The first column is the row's header. */
export function dataTable(options) {
	const tbody = h('tbody');
	const headRow = h('tr', null, options.columns.map((c) =>
		h('th', {scope: 'col', class: c.num ? 'num' : null, text: c.label})));
	const table = h('table', {class: `data ${options.class || ''}`.trim(), id: options.id},
		h('caption', {text: options.caption}), h('thead', null, headRow), tbody);
	const wrap = h('div', {class: 'table-wrap'}, table);
	const rows = new Map();
	const emptyRow = h('tr', {class: 'empty'},
		h('td', {colspan: options.columns.length, text: options.empty || 'Nothing yet.'}));
	wrap.table = table;
	wrap.update = (items) => {
		const seen = new Set();
		let previous = null;
		const focused = document.activeElement;
		let refocus = null;
		for (const item of items) {
			const key = String(options.key(item));
			seen.add(key);
			const cells = options.columns.map((c) => c.cell(item));
			const sig = cells.map(signature).join('\u0001');
			let row = rows.get(key);
			if (!row || row.sig !== sig) {
				const tr = h('tr', {'data-key': key}, cells.map((content, i) =>
					h(i === 0 ? 'th' : 'td', {
						scope: i === 0 ? 'row' : null,
						class: [options.columns[i].num ? 'num' : '', options.columns[i].class || ''].join(' ').trim() || null,
					}, content === null || content === undefined || content === '' ? '—' : content)));
				if (row) {
					if (focused && row.tr.contains(focused))
						refocus = {tr, key: focusKey(focused)};
					row.tr.replaceWith(tr);
				}
				row = {tr, sig};
				rows.set(key, row);
				tick(tr);
			}
			const wanted = previous ? previous.nextSibling : tbody.firstChild;
			if (row.tr !== wanted)
				tbody.insertBefore(row.tr, wanted);
			previous = row.tr;
		}
		for (const [key, row] of rows)
			if (!seen.has(key)) {
				row.tr.remove();
				rows.delete(key);
			}
		if (items.length === 0 && !emptyRow.parentNode)
			tbody.append(emptyRow);
		else if (items.length && emptyRow.parentNode)
			emptyRow.remove();
		if (refocus) {
			const again = [...refocus.tr.querySelectorAll('a, button, input, select')]
				.find((e) => focusKey(e) === refocus.key);
			if (again)
				again.focus();
		}
	};
	wrap.update([]);
	return wrap;
}

/* summaryList([[term, value], ...]) into a <dl>, replaced whole. */
export function fillSummary(dl, pairs) {
	clear(dl);
	for (const [term, value] of pairs) {
		if (value === undefined)
			continue;
		append(dl, h('div', {class: 'pair'}, h('dt', {text: term}), h('dd', null, value === null || value === '' ? '—' : value)));
	}
	tick(dl);
}

export function groupLink(name) {
	return h('a', {href: `#/group/${encodeURIComponent(name)}`, text: name});
}

export function runLink(id) {
	return h('a', {href: `#/run/${id}`, text: `run ${id}`});
}

/* An action button (data-action marks it, for tests and for the role check). */
export function actionButton(label, action, handler, className) {
	const button = h('button', {type: 'button', class: `action ${className || ''}`.trim(), 'data-action': action, text: label});
	button.addEventListener('click', async () => {
		if (button.disabled)
			return;
		button.disabled = true;
		button.setAttribute('aria-busy', 'true');
		try {
			await handler(button);
		} catch (error) {
			report(error);
		} finally {
			button.disabled = false;
			button.removeAttribute('aria-busy');
		}
	});
	return button;
}

/* A modal question; with typed, the answer must be typed exactly before the action goes. */
export function confirmDialog({title, text, confirmLabel, typed, danger}) {
	return new Promise((resolve) => {
		const input = typed ? h('input', {id: 'confirm-typed', type: 'text', autocomplete: 'off', spellcheck: 'false'}) : null;
		const yes = h('button', {type: 'submit', class: danger ? 'danger' : 'primary', text: confirmLabel, disabled: !!typed});
		const no = h('button', {type: 'button', text: 'Cancel'});
		const form = h('form', {method: 'dialog'},
			h('h2', {id: 'confirm-title', text: title}),
			h('p', {id: 'confirm-text', text}),
			typed ? h('div', {class: 'field'},
				h('label', {for: 'confirm-typed', text: `Type ${typed} to confirm`}), input) : null,
			h('div', {class: 'actions'}, yes, no));
		const dialog = h('dialog', {'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text'}, form);
		let answer = false;
		if (input)
			input.addEventListener('input', () => {
				yes.disabled = input.value !== typed;
			});
		form.addEventListener('submit', (event) => {
			event.preventDefault();
			if (input && input.value !== typed)
				return;
			answer = true;
			dialog.close();
		});
		no.addEventListener('click', () => dialog.close());
		dialog.addEventListener('close', () => {
			dialog.remove();
			resolve(answer);
		});
		const before = document.activeElement;
		dialog.addEventListener('close', () => {
			if (before && before.isConnected)
				before.focus();
		});
		document.body.append(dialog);
		dialog.showModal();
		(input || yes).focus();
	});
}

export function lagCell(group) {
	/* The lag runs on between polls: it is the age of the group's oldest last point. */
	return lagSince(Math.round((state.volumesAt - group.lag_ms) / 1000) * 1000);
}

export function pointOfSnapshot(volume) {
	const snapshot = volume.transfer && volume.transfer.snapshot;
	const match = /^ferry-(\d+)$/.exec(snapshot || '');
	return match ? match[1] : '—';
}
