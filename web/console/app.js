/* ferry's web console: a single-page app that ferryd serves at / (its files at /console/NAME).
 * This file starts it: the login, the session's start and end, and the router that draws each
 * page into <main>. index.html loads it as a module, and it imports the others:
 *   state.js     what this tab knows: the session, the last answers, lag samples, events
 *   dom.js       elements without markup, times and sizes in words, live texts, messages
 *   api.js       requests to /v1, the polling shared by the pages, the event stream
 *   widgets.js   sections, tables, summaries, action buttons, the confirmation dialog
 *   page-*.js    one file per page: overview, group, vms, runs (and a run), events, admin
 *
 * It speaks only to this ferryd's /v1 API. Login trades an API token once for a session
 * (POST /v1/session): the browser keeps an HttpOnly cookie, never the token, and the console
 * keeps the session's CSRF token in memory and sends it as X-CSRF-Token with every POST, PUT and
 * DELETE. A reload asks GET /v1/session for it again.
 *
 * Pages are hash routes drawn into <main>: #/overview, #/group/NAME, #/vms, #/runs, #/run/ID,
 * #/events, #/audit and #/tokens (admin). Data comes from polling (every 5 s, every second on a
 * running run's page) and from the event stream (GET /v1/events/stream): a point, state or step
 * event refreshes what is on screen at once.
 *
 * Invariants:
 *  1. No markup is built from strings: every text goes through textContent (h() in dom.js), so
 *     nothing the API returns can become markup.
 *  2. No inline script or style (the server's Content-Security-Policy refuses them): looks
 *     come from classes in app.css, and the hidden attribute.
 *  3. A control the session's role may not use is not drawn (viewer: no action at all;
 *     operator: no admin action). The server refuses them anyway; this keeps the page honest.
 *  4. Tables keep their rows between updates (dataTable() in widgets.js): a row is rebuilt only
 *     when what it shows changed, so keyboard focus and a screen reader's place survive the
 *     polling.
 *  5. The lag history exists only in this tab: samples of GET /v1/volumes since the console
 *     was opened (kept in sessionStorage across reloads), one hour at most. */

import {state, can} from './state.js';
import {h, append, clear, $, tick, notify, showError} from './dom.js';
import {api, poll, forgetHistory, loadLag, loadEvents, openStream} from './api.js';
import {pageOverview} from './page-overview.js';
import {pageGroup} from './page-group.js';
import {pageVms} from './page-vms.js';
import {pageRuns, pageRun} from './page-runs.js';
import {pageEvents} from './page-events.js';
import {pageAudit, pageTokens} from './page-admin.js';

async function boot() {
	$('skip').addEventListener('click', (event) => {
		event.preventDefault();
		$('main').focus();
	});
	$('logout').addEventListener('click', logout);
	window.addEventListener('hashchange', route);
	loadLag();
	try {
		const session = await api('GET', '/v1/session');
		startSession(session);
	} catch (error) {
		showLogin(error.status === 401 || error.status === 403 ? '' : error.message);
	}
}

function showLogin(message) {
	stopSession();
	document.title = 'Log in — ferry console';
	$('bar').hidden = true;
	$('foot').textContent = '';
	const main = clear($('main'));
	const field = h('input', {
		id: 'token', name: 'token', type: 'password', required: true, autocomplete: 'current-password',
		spellcheck: 'false', 'aria-describedby': 'token-help login-error',
	});
	const error = h('p', {id: 'login-error', class: 'error-box', role: 'alert'});
	const submit = h('button', {type: 'submit', class: 'primary', id: 'login-button', text: 'Log in'});
	const form = h('form', {id: 'login-form', class: 'login-form', novalidate: true},
		h('div', {class: 'field'},
			h('label', {for: 'token', text: 'API token'}),
			field,
			h('p', {id: 'token-help', class: 'help',
				text: 'A viewer, operator or admin token of this ferryd (ferry token create NAME --role ROLE). ' +
					'It is sent once; the browser then keeps only a session cookie.'})),
		error,
		submit);
	form.addEventListener('submit', async (event) => {
		event.preventDefault();
		error.textContent = '';
		if (!field.value.trim()) {
			error.textContent = 'Type or paste an API token first.';
			field.focus();
			return;
		}
		submit.disabled = true;
		submit.textContent = 'Logging in…';
		try {
			const session = await api('POST', '/v1/session', {token: field.value.trim()});
			field.value = '';
			startSession(session);
		} catch (failure) {
			error.textContent = failure.message;
			submit.disabled = false;
			submit.textContent = 'Log in';
			field.select();
			field.focus();
		}
	});
	append(main, h('section', {class: 'login', 'aria-labelledby': 'login-title'},
		h('h1', {id: 'login-title', text: 'ferry console'}),
		h('p', {text: 'Disaster recovery for this site: protection groups, replication, failovers.'}),
		form));
	if (message)
		error.textContent = message;
	field.focus();
}

function startSession(session) {
	state.generation++;
	state.session = session;
	showError('');
	notify('');
	$('bar').hidden = false;
	$('who').textContent = `${session.name} (${session.role})`;
	drawNav();
	openStream();
	state.tickTimer = setInterval(() => tick(), 1000);
	poll();
	loadEvents();
	if (!location.hash.startsWith('#/'))
		history.replaceState(null, '', '#/overview');
	route();
}

function stopSession() {
	state.generation++;
	if (state.page && state.page.stop)
		state.page.stop();
	state.page = null;
	if (state.stream)
		state.stream.close();
	state.stream = null;
	clearTimeout(state.pollTimer);
	clearTimeout(state.kickTimer);
	clearInterval(state.tickTimer);
	state.polling = state.pollAgain = false;
	state.session = null;
	state.events = [];
	state.eventsLoaded = false;
	state.volumes = state.health = state.vms = state.sites = null;
	$('stream-state').textContent = '';
}

export function sessionLost(message) {
	if (!state.session)
		return;
	showLogin('The session has ended (logged out, expired, its token revoked, or ferryd restarted): ' +
		`log in again.${message ? ` ferryd said: ${message}` : ''}`);
}

async function logout() {
	const button = $('logout');
	button.disabled = true;
	try {
		await api('DELETE', '/v1/session');
		forgetHistory();
		showLogin('');
		notify('Logged out. The session has ended at ferryd too.');
	} catch (error) {
		if (error.status === 401) /* it had ended already */
			showLogin('');
		else if (state.session)
			showError(`Log out failed: ${error.message}`);
	} finally {
		button.disabled = false;
	}
}

/* ---- navigation ---- */

const PAGES = [
	{pattern: /^#\/overview$/, nav: 'Overview', href: '#/overview', draw: pageOverview},
	{pattern: /^#\/group\/(.+)$/, draw: pageGroup, parent: '#/overview'},
	{pattern: /^#\/vms$/, nav: 'VMs', href: '#/vms', draw: pageVms},
	{pattern: /^#\/runs$/, nav: 'Runs', href: '#/runs', draw: pageRuns},
	{pattern: /^#\/run\/(\d+)$/, draw: pageRun, parent: '#/runs'},
	{pattern: /^#\/events$/, nav: 'Events', href: '#/events', draw: pageEvents},
	{pattern: /^#\/audit$/, nav: 'Audit', href: '#/audit', draw: pageAudit, role: 'admin'},
	{pattern: /^#\/tokens$/, nav: 'Tokens', href: '#/tokens', draw: pageTokens, role: 'admin'},
];

function drawNav() {
	const list = clear($('nav'));
	for (const page of PAGES) {
		if (!page.nav || (page.role && !can(page.role)))
			continue;
		append(list, h('li', null, h('a', {href: page.href, text: page.nav})));
	}
}

function markNav(href) {
	for (const link of $('nav').querySelectorAll('a')) {
		if (link.getAttribute('href') === href)
			link.setAttribute('aria-current', 'page');
		else
			link.removeAttribute('aria-current');
	}
}

function route() {
	if (!state.session)
		return;
	const hash = location.hash || '#/overview';
	let found = null, match = null;
	for (const page of PAGES) {
		match = hash.match(page.pattern);
		if (match) {
			found = page;
			break;
		}
	}
	if (!found) {
		location.replace('#/overview');
		return;
	}
	if (state.page && state.page.stop)
		state.page.stop();
	state.page = null;
	showError('');
	markNav(found.href || found.parent);
	const main = clear($('main'));
	if (found.role && !can(found.role)) {
		const title = h('h1', {tabindex: -1, text: 'Not available'});
		append(main, title, h('p', {
			text: `This page needs the ${found.role} role; you are logged in as ${state.session.name}, ` +
				`a ${state.session.role}. Ask an admin if you need it.`,
		}));
		document.title = 'Not available — ferry console';
		title.focus();
		return;
	}
	let param = match[1];
	try {
		param = param === undefined ? undefined : decodeURIComponent(param);
	} catch (error) {
		/* a malformed %-escape: the name as written */
	}
	const page = found.draw(main, param) || {};
	state.page = page;
	const title = main.querySelector('h1');
	if (title) {
		title.setAttribute('tabindex', '-1');
		document.title = `${title.textContent} — ferry console`;
		title.focus();
	}
	if (page.update)
		page.update('route');
}

document.addEventListener('DOMContentLoaded', boot);
