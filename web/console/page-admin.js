/* The admin pages: the audit log (#/audit) and the API tokens (#/tokens), created and revoked
 * here. app.js routes only an admin to them; ferryd refuses their requests to other roles. */

import {state} from './state.js';
import {h, append, clear, timeElement, notify, report} from './dom.js';
import {api} from './api.js';
import {section, dataTable, actionButton, confirmDialog} from './widgets.js';

export function pageAudit(main) {
	const range = h('select', {id: 'audit-since'},
		[['1 hour', 1], ['24 hours', 24], ['7 days', 168], ['30 days', 720]].map(([label, hours]) =>
			h('option', {value: hours, text: `the last ${label}`, selected: hours === 24})));
	const text = h('input', {id: 'audit-text', type: 'search', autocomplete: 'off'});
	const table = dataTable({
		caption: 'Who changed what (refusals too), newest first',
		empty: 'No entry in this range.',
		key: (e) => `${e.time_ms} ${e.method} ${e.path} ${e.token} ${e.status}`,
		columns: [
			{label: 'Time', cell: (e) => timeElement(e.time_ms)},
			{label: 'Token', cell: (e) => e.token},
			{label: 'Role', cell: (e) => e.role},
			{label: 'Client', cell: (e) => e.client},
			{label: 'Request', cell: (e) => h('span', {class: 'mono wrap', text: `${e.method} ${e.path}`})},
			{label: 'Object', cell: (e) => e.object || ''},
			{label: 'Status', num: true, cell: (e) => String(e.status)},
		],
	});
	let entries = [];
	append(main, h('h1', {text: 'Audit log'}),
		h('div', {class: 'filters', role: 'search', 'aria-label': 'Filter the audit log'},
			h('div', {class: 'field'}, h('label', {for: 'audit-since', text: 'Since'}), range),
			h('div', {class: 'field'}, h('label', {for: 'audit-text', text: 'Token, path or object contains'}), text)),
		table);

	function draw() {
		const needle = text.value.trim().toLowerCase();
		table.update(entries.filter((e) => !needle ||
			`${e.token} ${e.path} ${e.object} ${e.client} ${e.method}`.toLowerCase().includes(needle)));
	}
	async function load() {
		try {
			const sinceMs = Date.now() - Number(range.value) * 3600 * 1000;
			const answer = await api('GET', `/v1/audit?since_ms=${sinceMs}&limit=500`);
			entries = (answer.entries || []).slice().reverse();
			draw();
		} catch (error) {
			report(error);
		}
	}
	range.addEventListener('change', load);
	text.addEventListener('input', draw);
	return {update: load};
}

/* ---- Tokens (admin) ---- */

export function pageTokens(main) {
	const name = h('input', {id: 'token-name', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false'});
	const role = h('select', {id: 'token-role'},
		['viewer', 'operator', 'admin', 'peer'].map((r) => h('option', {value: r, text: r})));
	const days = h('input', {id: 'token-days', type: 'number', min: 1, inputmode: 'numeric', 'aria-describedby': 'token-days-help'});
	const created = h('div', {id: 'token-created', 'aria-live': 'polite'});
	const formError = h('p', {class: 'error-box', role: 'alert'});
	const form = h('form', {id: 'token-form', novalidate: true},
		h('div', {class: 'inline-fields'},
			h('div', {class: 'field'}, h('label', {for: 'token-name', text: 'Name'}), name),
			h('div', {class: 'field'}, h('label', {for: 'token-role', text: 'Role'}), role),
			h('div', {class: 'field'}, h('label', {for: 'token-days', text: 'Expires after (days)'}), days),
			h('button', {type: 'submit', class: 'primary', 'data-action': 'token-create', text: 'Create token'})),
		h('p', {id: 'token-days-help', class: 'help', text: 'Leave the days empty for a token that does not expire.'}),
		formError);
	const table = dataTable({
		caption: 'API tokens of this ferryd (secrets are never shown again)',
		empty: 'No token but the bootstrap one.',
		key: (t) => t.name,
		columns: [
			{label: 'Name', cell: (t) => t.name},
			{label: 'Role', cell: (t) => t.role},
			{label: 'Created', cell: (t) => timeElement(t.created_ms)},
			{label: 'Last used', cell: (t) => t.last_used_ms ? timeElement(t.last_used_ms) : 'never'},
			{label: 'Expires', cell: (t) => t.expires_ms ? timeElement(t.expires_ms) : 'never'},
			{label: 'Revoke', cell: (t) => revokeButton(t.name)},
		],
	});
	append(main, h('h1', {text: 'Tokens'}), section('New token', 't-new', form, created), section('Tokens', 't-list', table));

	function revokeButton(tokenName) {
		const button = actionButton('Revoke…', 'token-revoke', async () => {
			const yes = await confirmDialog({
				title: `Revoke token ${tokenName}?`,
				text: `Whoever holds ${tokenName} can no longer reach this ferryd, and its console sessions end.` +
					(tokenName === state.session.name ? ' It is the token you are logged in with.' : ''),
				confirmLabel: 'Revoke', typed: tokenName, danger: true,
			});
			if (!yes)
				return;
			await api('DELETE', `/v1/tokens/${encodeURIComponent(tokenName)}`);
			notify(`Token ${tokenName} revoked.`);
			load();
		}, 'danger');
		button.setAttribute('data-focus', `revoke ${tokenName}`);
		button.setAttribute('aria-label', `Revoke ${tokenName}`);
		return button;
	}
	async function load() {
		try {
			table.update((await api('GET', '/v1/tokens')).tokens || []);
		} catch (error) {
			report(error);
		}
	}
	form.addEventListener('submit', async (event) => {
		event.preventDefault();
		formError.textContent = '';
		clear(created);
		const body = {name: name.value.trim(), role: role.value};
		if (days.value)
			body.expires_days = Number(days.value);
		try {
			const answer = await api('POST', '/v1/tokens', body);
			append(created, h('div', {class: 'secret-box'},
				h('p', null, `Token ${answer.name} (${answer.role}) was created. Its secret is shown this once:`),
				h('p', null, h('code', {id: 'token-secret', text: answer.token})),
				h('p', {class: 'help', text: 'Give it to its owner over a safe channel; ferryd keeps only its hash.'})));
			name.value = '';
			load();
		} catch (error) {
			if (error.status !== 401)
				formError.textContent = error.message;
		}
	});
	return {update: load};
}
