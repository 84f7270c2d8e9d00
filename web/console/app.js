/* ferry's web console: a single-page app that ferryd serves at / (this file at /console/app.js).
 *
 * It speaks only to this ferryd's /v1 API. Login trades an API token once for a session
 * (POST /v1/session): the browser keeps an HttpOnly cookie, never the token, and this script
 * keeps the session's CSRF token in memory and sends it as X-CSRF-Token with every POST, PUT and
 * DELETE. A reload asks GET /v1/session for it again.
 *
 * Pages are hash routes drawn into <main>: #/overview, #/group/NAME, #/vms, #/runs, #/run/ID,
 * #/events, #/audit and #/tokens (admin). Data comes from polling (every 5 s, every second on a
 * running run's page) and from the event stream (GET /v1/events/stream): a point, state or step
 * event refreshes what is on screen at once.
 *
 * Invariants:
 *  1. No markup is built from strings: every text goes through textContent (h() below), so
 *     nothing the API returns can become markup.
 *  2. No inline script or style (the server's Content-Security-Policy refuses them): looks
 *     come from classes in app.css, and the hidden attribute.
 *  3. A control the session's role may not use is not drawn (viewer: no action at all;
 *     operator: no admin action). The server refuses them anyway; this keeps the page honest.
 *  4. Tables keep their rows between updates (dataTable()): a row is rebuilt only when what it
 *     shows changed, so keyboard focus and a screen reader's place survive the polling.
 *  5. The lag history exists only in this tab: samples of GET /v1/volumes since the console
 *     was opened (kept in sessionStorage across reloads), one hour at most. */
'use strict';

(function () {
	const ROLE_RANK = {viewer: 0, operator: 1, admin: 2};
	const POLL_MS = 5000;
	const RUN_POLL_MS = 1000;
	const HOUR_MS = 3600 * 1000;
	const EVENTS_KEPT = 500;
	const LAG_KEY = 'ferry.lag';

	const state = {
		session: null, /* {name, role, csrf, expires_ms} */
		health: null,
		volumes: null, /* the last GET /v1/volumes */
		volumesAt: 0,
		vms: null,
		sites: null,
		lag: new Map(), /* group -> [[time_ms, lag_ms], ...], oldest first (invariant 5) */
		lagSince: Date.now(),
		points: new Map(), /* group -> Map(point -> {point, time_ms, volumes: Set}) */
		events: [], /* newest first */
		eventsLoaded: false,
		stream: null,
		page: null,
		pollTimer: 0,
		kickTimer: 0,
		tickTimer: 0,
		generation: 0, /* bumped at login and logout: late answers of an old session are dropped */
	};

	/* ---- small helpers ---- */

	/* h(tag, props, ...children): an element; props: class, text, on*, attributes. */
	function h(tag, props, ...children) {
		const element = document.createElement(tag);
		setProps(element, props);
		append(element, children);
		return element;
	}

	function svg(tag, props, ...children) {
		const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
		setProps(element, props);
		append(element, children);
		return element;
	}

	function setProps(element, props) {
		if (!props)
			return;
		for (const [key, value] of Object.entries(props)) {
			if (value === undefined || value === null || value === false)
				continue;
			if (key === 'class')
				element.setAttribute('class', value);
			else if (key === 'text')
				element.textContent = String(value);
			else if (key.startsWith('on') && typeof value === 'function')
				element.addEventListener(key.slice(2), value);
			else if (value === true)
				element.setAttribute(key, '');
			else
				element.setAttribute(key, String(value));
		}
	}

	function append(element, ...children) {
		for (const child of children.flat(Infinity)) {
			if (child === null || child === undefined || child === false)
				continue;
			element.append(child instanceof Node ? child : document.createTextNode(String(child)));
		}
		return element;
	}

	function clear(element) {
		while (element.firstChild)
			element.firstChild.remove();
		return element;
	}

	/* Replaces element's content only when it changed: a live region speaks only then. */
	function setContent(element, ...children) {
		const fresh = append(document.createElement('div'), ...children);
		if (fresh.innerHTML === element.innerHTML)
			return element;
		clear(element);
		while (fresh.firstChild)
			element.append(fresh.firstChild);
		return element;
	}

	const $ = (id) => document.getElementById(id);

	function can(role) {
		return state.session && ROLE_RANK[state.session.role] >= ROLE_RANK[role];
	}

	function pad(n) {
		return String(n).padStart(2, '0');
	}

	function formatTime(ms) {
		if (!ms)
			return '—';
		const d = new Date(ms);
		return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
			`${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
	}

	function timeElement(ms) {
		if (!ms)
			return '—';
		return h('time', {datetime: new Date(ms).toISOString(), text: formatTime(ms)});
	}

	/* 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min */
	function formatDuration(ms) {
		if (ms === null || ms === undefined || isNaN(ms))
			return '—';
		ms = Math.max(0, ms);
		if (ms < 1000)
			return `${Math.round(ms)} ms`;
		if (ms < 60000)
			return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
		const s = Math.round(ms / 1000);
		if (s < 3600)
			return s % 60 ? `${Math.floor(s / 60)} min ${pad(s % 60)} s` : `${s / 60} min`;
		if (s < 86400)
			return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
		return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
	}

	/* Whole seconds for lags and ages: 12 s, 4 min 05 s */
	function formatSeconds(ms) {
		return ms < 60000 ? `${Math.max(0, Math.round(ms / 1000))} s` : formatDuration(ms);
	}

	function formatBytes(n) {
		if (n === null || n === undefined || isNaN(n))
			return '—';
		const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
		let i = 0;
		while (n >= 1024 && i < units.length - 1) {
			n /= 1024;
			i++;
		}
		return `${i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
	}

	function formatRate(bytesPerSecond) {
		return bytesPerSecond ? `${formatBytes(bytesPerSecond)}/s` : '—';
	}

	/* A state word, coloured by class and written out (never colour alone). */
	function badge(word, extraClass) {
		const text = word || 'unknown';
		return h('span', {class: `badge s-${text.replace(/[^a-z-]/g, '')} ${extraClass || ''}`.trim(), text});
	}

	/* Live texts, redrawn every second by tick(): "12 s ago", "in 20 s", a running lag. */
	function since(ms) {
		return ms ? h('span', {class: 'live', 'data-since': ms}) : '—';
	}

	function until(ms) {
		return ms ? h('span', {class: 'live', 'data-until': ms}) : '—';
	}

	function lagSince(ms) {
		return ms ? h('span', {class: 'live', 'data-lag': ms}) : '—';
	}

	function tick(root) {
		const now = Date.now();
		for (const element of (root || document).querySelectorAll('.live')) {
			let text;
			if (element.dataset.since)
				text = `${formatSeconds(now - Number(element.dataset.since))} ago`;
			else if (element.dataset.until) {
				const left = Number(element.dataset.until) - now;
				text = left > 500 ? `in ${formatSeconds(left)}` : 'due';
			} else if (element.dataset.lag)
				text = formatSeconds(now - Number(element.dataset.lag));
			else if (element.dataset.running)
				text = `${formatDuration(now - Number(element.dataset.running))} so far`;
			if (text !== undefined && element.textContent !== text)
				element.textContent = text;
		}
	}

	function notify(message) {
		$('notice').textContent = message;
	}

	/* The alert region: an action's failure stays until the next action or page; one of the
	 * polling goes once a poll succeeds again. */
	function showError(message, fromPoll) {
		$('alert').textContent = message || '';
		state.alertFromPoll = !!(message && fromPoll);
	}

	/* An API failure for the alert region; a 401 has already sent the page to the login, and an
	 * answer to an older session is dropped. */
	function report(error) {
		if (error.status !== 401 && error.code !== 'stale')
			showError(error.message);
	}

	function clearPollError() {
		if (state.alertFromPoll)
			showError('');
	}

	/* ---- the API ---- */

	class ApiError extends Error {
		constructor(status, code, message) {
			super(message);
			this.status = status;
			this.code = code;
		}
	}

	/* api(METHOD, PATH, BODY): the parsed JSON answer, or throws an ApiError whose message is the
	 * server's own (what, why, what next). A 401 on any route but the session's ends the session
	 * here too. */
	async function api(method, path, body) {
		const generation = state.generation;
		const headers = {Accept: 'application/json'};
		if (method !== 'GET' && state.session && state.session.csrf)
			headers['X-CSRF-Token'] = state.session.csrf;
		if (body !== undefined)
			headers['Content-Type'] = 'application/json';
		let response;
		try {
			response = await fetch(path, {
				method,
				headers,
				credentials: 'same-origin',
				cache: 'no-store',
				body: body === undefined ? undefined : JSON.stringify(body),
			});
		} catch (error) {
			throw new ApiError(0, 'unreachable',
				`ferryd did not answer ${method} ${path} (${error.message}): check that it runs and that this ` +
				'machine reaches it, then try again');
		}
		const text = await response.text();
		let data = null;
		try {
			data = text ? JSON.parse(text) : null;
		} catch (error) {
			data = null;
		}
		if (!response.ok) {
			const detail = data && data.error ? data.error : {};
			const failure = new ApiError(response.status, detail.code || String(response.status),
				detail.message || `${method} ${path} answered HTTP ${response.status}`);
			if (response.status === 401 && !path.startsWith('/v1/session') && generation === state.generation)
				sessionLost(failure.message);
			throw failure;
		}
		if (generation !== state.generation)
			throw new ApiError(0, 'stale', 'the session changed while this request ran');
		return data;
	}

	/* ---- session ---- */

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

	function sessionLost(message) {
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

	/* ---- data shared by the pages: health, volumes (and lag samples), VMs, sites ---- */

	/* Polls what every page needs, then the page itself; again in POLL_MS. */
	async function poll() {
		clearTimeout(state.pollTimer);
		if (state.polling) { /* one at a time: the one under way is followed by another */
			state.pollAgain = true;
			return;
		}
		state.polling = true;
		const generation = state.generation;
		try {
			await refreshCommon();
		} catch (error) {
			if (generation === state.generation && error.status !== 401 && error.code !== 'stale')
				showError(error.message, true);
		}
		if (generation !== state.generation)
			return;
		state.polling = false;
		if (state.page && state.page.update)
			state.page.update('poll');
		if (state.pollAgain) {
			state.pollAgain = false;
			poll();
			return;
		}
		state.pollTimer = setTimeout(poll, POLL_MS);
	}

	/* Soon, once: after an action or an event (several events make one refresh). */
	function kick() {
		clearTimeout(state.kickTimer);
		state.kickTimer = setTimeout(poll, 250);
	}

	async function refreshCommon() {
		const [health, volumes] = await Promise.all([api('GET', '/v1/health'), api('GET', '/v1/volumes')]);
		state.health = health;
		state.volumes = volumes;
		state.volumesAt = Date.now();
		drawHealth();
		sampleLag(volumes);
		notePoints(volumes);
		clearPollError();
	}

	async function refreshVms() {
		state.vms = (await api('GET', '/v1/vms')).vms || [];
		return state.vms;
	}

	async function refreshSites() {
		state.sites = (await api('GET', '/v1/sites')).sites || [];
		return state.sites;
	}

	function drawHealth() {
		const health = state.health;
		if (!health)
			return;
		setContent($('site-health'), h('span', {class: 'visually-hidden', text: 'Site health: '}), badge(health.health));
		$('foot').textContent = `ferryd ${health.version || ''}`.trim();
	}

	function groupsHere() {
		return (state.volumes && state.volumes.groups) || [];
	}

	function protectedVolumes(group) {
		const volumes = (state.volumes && state.volumes.volumes) || [];
		return volumes.filter((v) => v.kind === 'protected' && (group === undefined || v.group === group));
	}

	/* Invariant 5: one lag sample per group per poll, an hour at most, kept in this tab. */
	function sampleLag(volumes) {
		const now = Date.now();
		for (const group of volumes.groups || []) {
			if (!group.volumes)
				continue;
			const samples = state.lag.get(group.name) || [];
			samples.push([now, group.last_point ? group.lag_ms : null]);
			while (samples.length && samples[0][0] < now - HOUR_MS)
				samples.shift();
			state.lag.set(group.name, samples);
		}
		try {
			sessionStorage.setItem(LAG_KEY, JSON.stringify({since: state.lagSince, groups: [...state.lag]}));
		} catch (error) {
			/* storage full or refused: the history lives in memory only */
		}
	}

	/* At log out: the next one to log in on this browser starts afresh. */
	function forgetHistory() {
		state.lag.clear();
		state.points.clear();
		state.lagSince = Date.now();
		try {
			sessionStorage.removeItem(LAG_KEY);
		} catch (error) {
			/* nothing kept */
		}
	}

	function loadLag() {
		try {
			const saved = JSON.parse(sessionStorage.getItem(LAG_KEY) || 'null');
			if (saved && Array.isArray(saved.groups)) {
				const oldest = Date.now() - HOUR_MS;
				for (const [name, samples] of saved.groups)
					state.lag.set(name, samples.filter((s) => s[0] >= oldest));
				state.lagSince = Math.max(saved.since || Date.now(), oldest);
			}
		} catch (error) {
			state.lag.clear();
		}
	}

	function addPoint(group, point, timeMs, volume) {
		if (!group || !point)
			return;
		const points = state.points.get(group) || new Map();
		const entry = points.get(point) || {point, time_ms: timeMs, volumes: new Set()};
		if (timeMs && (!entry.time_ms || timeMs < entry.time_ms))
			entry.time_ms = timeMs;
		if (volume)
			entry.volumes.add(volume);
		points.set(point, entry);
		state.points.set(group, points);
	}

	function notePoints(volumes) {
		for (const volume of volumes.volumes || [])
			if (volume.kind === 'protected' && volume.last_point)
				addPoint(volume.group, volume.last_point, volume.last_point_time_ms, volume.name);
	}

	/* "point 7 committed at site dr (...)" about a volume: a point of that volume's group. */
	function notePointEvent(event) {
		const match = /^point (\d+) committed/.exec(event.message || '');
		if (!match)
			return;
		const volume = protectedVolumes().find((v) => v.name === event.object);
		if (volume)
			addPoint(volume.group, Number(match[1]), event.time_ms, volume.name);
	}

	/* ---- the event stream ---- */

	async function loadEvents() {
		const generation = state.generation;
		try {
			const answer = await api('GET', '/v1/events');
			if (generation !== state.generation)
				return;
			const known = new Set(state.events.map((e) => e.id));
			const older = (answer.events || []).filter((e) => !known.has(e.id));
			state.events = [...state.events, ...older].sort((a, b) => b.id - a.id).slice(0, EVENTS_KEPT);
			state.eventsLoaded = true;
			if (!state.volumes)
				await refreshCommon();
			for (const event of [...older].reverse())
				if (event.kind === 'point')
					notePointEvent(event);
			if (state.page && state.page.onEvents)
				state.page.onEvents();
		} catch (error) {
			report(error);
		}
	}

	function openStream() {
		if (state.stream)
			state.stream.close();
		const generation = state.generation;
		const stream = new EventSource('/v1/events/stream');
		state.stream = stream;
		const streamState = $('stream-state');
		stream.addEventListener('open', () => {
			streamState.textContent = 'Live';
		});
		stream.addEventListener('error', () => {
			if (generation !== state.generation)
				return;
			if (stream.readyState === EventSource.CLOSED) {
				streamState.textContent = 'Updates paused';
				/* Closed for good (a 401, say): is the session still there? */
				setTimeout(async () => {
					if (generation !== state.generation)
						return;
					try {
						await api('GET', '/v1/session');
						openStream();
					} catch (error) {
						if (error.status === 401)
							sessionLost(error.message);
					}
				}, 3000);
			} else
				streamState.textContent = 'Reconnecting…';
		});
		for (const kind of ['point', 'state', 'step', 'error', 'info', 'message'])
			stream.addEventListener(kind, (message) => {
				if (generation !== state.generation)
					return;
				let event;
				try {
					event = JSON.parse(message.data);
				} catch (error) {
					return;
				}
				receiveEvent(event);
			});
	}

	function receiveEvent(event) {
		if (state.events.some((e) => e.id === event.id))
			return;
		state.events.unshift(event);
		if (state.events.length > EVENTS_KEPT)
			state.events.length = EVENTS_KEPT;
		if (event.kind === 'point')
			notePointEvent(event);
		if (state.page && state.page.onEvent)
			state.page.onEvent(event);
		if (event.kind === 'point' || event.kind === 'state' || event.kind === 'error')
			kick();
	}

	/* ---- building blocks of the pages ---- */

	function section(title, id, ...children) {
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
	function dataTable(options) {
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
	function fillSummary(dl, pairs) {
		clear(dl);
		for (const [term, value] of pairs) {
			if (value === undefined)
				continue;
			append(dl, h('div', {class: 'pair'}, h('dt', {text: term}), h('dd', null, value === null || value === '' ? '—' : value)));
		}
		tick(dl);
	}

	function groupLink(name) {
		return h('a', {href: `#/group/${encodeURIComponent(name)}`, text: name});
	}

	function runLink(id) {
		return h('a', {href: `#/run/${id}`, text: `run ${id}`});
	}

	/* An action button (data-action marks it, for tests and for the role check). */
	function actionButton(label, action, handler, className) {
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
	function confirmDialog({title, text, confirmLabel, typed, danger}) {
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

	/* ---- Overview ---- */

	function pageOverview(main) {
		const healthWord = h('p');
		const reasons = h('ul', {class: 'reasons'});
		const groups = dataTable({
			caption: 'Protection groups whose points this site takes',
			empty: 'No protection group takes points at this site.',
			key: (g) => g.name,
			columns: [
				{label: 'Group', cell: (g) => groupLink(g.name)},
				{label: 'Members', num: true, cell: (g) => String(g.volumes)},
				{label: 'RPO target', num: true, cell: (g) => g.rpo_target ? formatSeconds(g.rpo_target * 1000) : '—'},
				{label: 'Lag', num: true, cell: (g) => g.last_point ? lagCell(g) : '—'},
				{label: 'Last point', num: true, cell: (g) => g.last_point ? String(g.last_point) : 'none yet'},
				{label: 'Point age', cell: (g) => g.last_point ? since(g.last_point_time_ms) : '—'},
				{label: 'Next point', cell: (g) => g.paused ? 'paused' : until(g.next_point_ms)},
				{label: 'Throughput', num: true, cell: (g) => formatRate(groupThroughput(g.name))},
				{label: 'State', cell: (g) => badge(g.state)},
			],
		});
		const replicas = dataTable({
			caption: 'Volumes this site receives or holds',
			empty: 'No volume is received at this site.',
			key: (v) => v.name,
			columns: [
				{label: 'Volume', cell: (v) => v.name},
				{label: 'Kind', cell: (v) => v.kind},
				{label: 'Point', num: true, cell: (v) => pointOfSnapshot(v)},
				{label: 'Size', num: true, cell: (v) => formatBytes(v.size)},
				{label: 'Updated', cell: (v) => v.transfer ? since(v.transfer.updated_ms) : '—'},
				{label: 'State', cell: (v) => badge(v.state)},
			],
		});
		const replicaGroups = h('ul');
		const replicaGroupsSection = section('Groups with VMs replicated here', 'o-replica-groups',
			h('p', {class: 'help', text: 'Their points are taken at the primary site; failovers of them run here.'}), replicaGroups);
		const sites = dataTable({
			caption: 'Replica sites this site sends to',
			empty: 'No replica site is configured here.',
			key: (s) => s.name,
			columns: [
				{label: 'Site', cell: (s) => s.name},
				{label: 'Address', cell: (s) => h('span', {class: 'mono wrap', text: s.url})},
				{label: 'Its console', cell: (s) => consoleLink(s)},
				{label: 'CA certificate', cell: (s) => s.cacert ? 'given' : 'system'},
			],
		});
		const replicasSection = section('Received volumes', 'o-replicas', replicas);
		append(main,
			h('h1', {text: 'Overview'}),
			section('Health', 'o-health', healthWord, reasons),
			section('Protection groups', 'o-groups', groups),
			replicaGroupsSection,
			replicasSection,
			section('Sites', 'o-sites', sites));
		replicaGroupsSection.hidden = true;
		replicasSection.hidden = true;

		return {
			async update() {
				const health = state.health;
				if (health) {
					clear(healthWord);
					append(healthWord, 'This site is ', badge(health.health, 'health-word'),
						health.reasons && health.reasons.length ? '' : ' — nothing needs attention.');
					clear(reasons);
					for (const reason of health.reasons || [])
						append(reasons, h('li', null, badge(reason.level), ' ', reason.reason));
				}
				if (state.volumes) {
					groups.update(groupsHere());
					const received = (state.volumes.volumes || []).filter((v) => v.kind !== 'protected');
					replicas.update(received);
					replicasSection.hidden = received.length === 0;
				}
				try {
					const [siteList, vms] = await Promise.all([refreshSites(), refreshVms()]);
					sites.update(siteList);
					const scheduled = new Set(groupsHere().map((g) => g.name));
					const names = [...new Set(vms.filter((vm) => vm.role !== 'primary' && !scheduled.has(vm.group))
						.map((vm) => vm.group))].sort();
					clear(replicaGroups);
					for (const name of names)
						append(replicaGroups, h('li', null, groupLink(name)));
					replicaGroupsSection.hidden = names.length === 0;
				} catch (error) {
					report(error);
				}
			},
		};
	}

	function lagCell(group) {
		/* The lag runs on between polls: it is the age of the group's oldest last point. */
		return lagSince(Math.round((state.volumesAt - group.lag_ms) / 1000) * 1000);
	}

	function groupThroughput(name) {
		return protectedVolumes(name).reduce((sum, v) => sum + (v.throughput || 0), 0);
	}

	function pointOfSnapshot(volume) {
		const snapshot = volume.transfer && volume.transfer.snapshot;
		const match = /^ferry-(\d+)$/.exec(snapshot || '');
		return match ? match[1] : '—';
	}

	function consoleLink(site) {
		try {
			const url = new URL(site.url);
			if (url.protocol !== 'https:')
				return '—';
			return h('a', {href: `${url.origin}/`, rel: 'noopener noreferrer', text: `console of ${site.name}`});
		} catch (error) {
			return '—';
		}
	}

	/* ---- A group ---- */

	function pageGroup(main, name) {
		const heading = h('h1', {text: `Group ${name}`});
		const stateLine = h('p', {id: 'group-state', 'aria-live': 'polite'});
		const live = h('p', {class: 'visually-hidden', 'aria-live': 'polite'});
		const summary = h('dl', {class: 'summary', id: 'group-summary'});
		const note = h('p', {class: 'help'});
		const members = dataTable({
			caption: `Protected volumes of ${name}`,
			empty: 'No protected volume of this group at this site.',
			key: (v) => v.name,
			columns: [
				{label: 'Volume', cell: (v) => v.name},
				{label: 'State', cell: (v) => badge(v.state)},
				{label: 'Last point', num: true, cell: (v) => v.last_point ? String(v.last_point) : 'none yet'},
				{label: 'Point time', cell: (v) => timeElement(v.last_point_time_ms)},
				{label: 'Lag', num: true, cell: (v) => v.last_point ? lagSince(Math.round((state.volumesAt - v.lag_ms) / 1000) * 1000) : '—'},
				{label: 'Replica', cell: (v) => `${v.replica} at ${v.site}`},
				{label: 'Last delta', num: true, cell: (v) => v.last_point ? `${formatBytes(v.bytes_sent)} in ${formatDuration(v.duration_ms)}` : '—'},
				{label: 'Throughput', num: true, cell: (v) => formatRate(v.throughput)},
				{label: 'Reason', cell: (v) => v.reason || ''},
			],
		});
		const replicaMembers = dataTable({
			caption: `Replicas of ${name}'s disks held at this site`,
			empty: 'No replica of this group at this site.',
			key: (v) => v.name,
			columns: [
				{label: 'Replica', cell: (v) => v.name},
				{label: 'Point', num: true, cell: (v) => pointOfSnapshot(v)},
				{label: 'Updated', cell: (v) => v.transfer ? since(v.transfer.updated_ms) : '—'},
				{label: 'State', cell: (v) => badge(v.state)},
			],
		});
		const points = dataTable({
			caption: 'Points committed, newest first, as this console saw them (the event log gives commit times, the status the points\' own times)',
			empty: 'No committed point seen yet.',
			id: 'points',
			key: (p) => p.point,
			columns: [
				{label: 'Point', num: true, cell: (p) => String(p.point)},
				{label: 'Time', cell: (p) => timeElement(p.time_ms)},
				{label: 'Age', cell: (p) => since(p.time_ms)},
				{label: 'Volumes', cell: (p) => [...p.volumes].join(', ')},
			],
		});
		const vmTable = dataTable({
			caption: `VMs of ${name} (the role is this site's)`,
			empty: 'No VM of this group is registered at this site.',
			key: (vm) => vm.name,
			columns: [
				{label: 'VM', cell: (vm) => vm.name},
				{label: 'Role here', cell: (vm) => badge(vm.role)},
				{label: 'Order', num: true, cell: (vm) => vm.order === null || vm.order === undefined ? '—' : String(vm.order)},
				{label: 'Disks', num: true, cell: (vm) => String((vm.disks || []).length)},
			],
		});
		const runs = dataTable({
			caption: `Runs of ${name} at this site, newest first`,
			empty: 'No run of this group here.',
			key: (r) => r.run,
			columns: [
				{label: 'Run', cell: (r) => runLink(r.run)},
				{label: 'Kind', cell: (r) => r.kind},
				{label: 'Status', cell: (r) => badge(r.status)},
				{label: 'Started', cell: (r) => timeElement(r.started_ms)},
			],
		});
		const chart = h('figure', {class: 'chart'});
		const actions = h('div', {id: 'group-actions'});
		const membersSection = section('Members', 'g-members', members);
		const replicaSection = section('Replicas here', 'g-replicas', replicaMembers);
		const pointsSection = section('Points', 'g-points', points);
		const chartSection = section('Lag, last hour', 'g-lag', chart);
		append(main, heading, stateLine, live, summary, note,
			can('operator') ? section('Actions', 'g-actions', actions) : null,
			membersSection, replicaSection, chartSection, pointsSection,
			section('VMs', 'g-vms', vmTable), section('Runs', 'g-runs', runs));
		replicaSection.hidden = true;

		let groupRuns = [];
		let drawnActions = '';
		let lastPoint = 0;

		function drawActions(group, vms) {
			if (!can('operator'))
				return;
			/* Redrawn only when what they depend on changes (focus stays on a button). */
			const key = JSON.stringify([!!group, group && group.paused, vms.map((v) => v.role), state.session.role]);
			if (key === drawnActions)
				return;
			drawnActions = key;
			clear(actions);
			if (group) {
				append(actions, h('fieldset', {class: 'action-group'},
					h('legend', {text: 'Replication'}),
					h('div', {class: 'actions'},
						actionButton('Sync now', 'sync', async () => {
							await api('POST', `/v1/groups/${encodeURIComponent(name)}/sync`);
							notify(`Sync of ${name} requested: the new point shows here once it is committed at the replica site.`);
							kick();
						}, 'primary'),
						group.paused
							? actionButton('Resume', 'resume', async () => {
								await api('POST', `/v1/groups/${encodeURIComponent(name)}/resume`);
								notify(`Group ${name} resumed: points come on the schedule again.`);
								kick();
							})
							: actionButton('Pause', 'pause', async () => {
								await api('POST', `/v1/groups/${encodeURIComponent(name)}/pause`);
								notify(`Group ${name} paused: no point is taken on the schedule until it is resumed (Sync now still takes one).`);
								kick();
							})),
					h('p', {class: 'help', text: 'Sync now takes and ships a point at once, also while the group is paused.'})));
			}
			const here = vms.length && vms.every((v) => v.role === 'primary');
			append(actions, h('fieldset', {class: 'action-group'},
				h('legend', {text: 'Failover'}),
				h('div', {class: 'actions'},
					actionButton('Test failover', 'failover-test', () => startRun({kind: 'failover-test', group: name})),
					actionButton('Clean up test failover', 'failover-cleanup', () => startRun({kind: 'failover-cleanup', group: name})),
					can('admin') ? actionButton('Fail over…', 'failover', async () => {
						const yes = await confirmDialog({
							title: `Fail over group ${name}?`,
							text: `The group's VMs are fenced at their primary site if it answers, their replicas here are rolled ` +
								`back to the newest common point and the VMs start at this site. Writes made at the primary ` +
								`after that point are not in the replicas.`,
							confirmLabel: 'Fail over', typed: name, danger: true,
						});
						if (yes)
							await startRun({kind: 'failover', group: name});
					}, 'danger') : null,
					can('admin') ? actionButton('Reprotect…', 'reprotect', async () => {
						const yes = await confirmDialog({
							title: `Reprotect group ${name}?`,
							text: `Run this at the site the VMs now run at. The other site's images go back to the last point both ` +
								`sites share (what was written there after it is dropped) and become replicas of this site's.`,
							confirmLabel: 'Reprotect', typed: name, danger: true,
						});
						if (yes)
							await startRun({kind: 'reprotect', group: name});
					}, 'danger') : null),
				h('p', {
					class: 'help',
					text: here
						? 'This site is the primary of these VMs: a test failover or a failover runs at the replica site. ' +
							'Open that site\'s console (Overview, Sites).'
						: 'A test failover starts the VMs here on clones of a point, network links down, while replication goes on; ' +
							'clean it up when done.' + (can('admin') ? ' Failover and Reprotect ask for the group\'s name first.' : ''),
				})));
		}

		return {
			async update() {
				let vms = state.vms || [], runList = groupRuns;
				try {
					const answers = await Promise.all([refreshVms(), api('GET', '/v1/runs')]);
					vms = answers[0];
					runList = groupRuns = (answers[1].runs || []).filter((r) => r.target === name);
				} catch (error) {
					report(error);
				}
				const group = groupsHere().find((g) => g.name === name);
				const groupVms = vms.filter((vm) => vm.group === name);
				if (group) {
					setContent(stateLine, 'State: ', badge(group.state), group.paused ? ` since ${formatTime(group.paused_since_ms)}` : '');
					if (lastPoint && group.last_point > lastPoint)
						live.textContent = `Point ${group.last_point} of ${name} committed.`;
					lastPoint = group.last_point;
					fillSummary(summary, [
						['Members', String(group.volumes)],
						['Interval', formatSeconds(group.interval * 1000)],
						['Points kept', String(group.keep)],
						['RPO target', group.rpo_target ? formatSeconds(group.rpo_target * 1000) : '—'],
						['Lag', group.last_point ? lagCell(group) : '—'],
						['Last point', group.last_point ? String(group.last_point) : 'none yet'],
						['Point time', timeElement(group.last_point_time_ms)],
						['Point age', group.last_point ? since(group.last_point_time_ms) : '—'],
						['Next point', group.paused ? 'paused' : until(group.next_point_ms)],
						['Slowest last delta', formatDuration(group.duration_ms)],
						['Failed cycles', String(group.errors || 0)],
						['Reason', group.reason || undefined],
					]);
					note.textContent = '';
				} else {
					clear(stateLine);
					fillSummary(summary, []);
					note.textContent = groupVms.length
						? `This site does not take ${name}'s points: it is the replica side (or the group lives elsewhere). ` +
							'Its VMs and replicas here are below.'
						: `No group ${name} at this site.`;
				}
				membersSection.hidden = !group;
				chartSection.hidden = !group;
				pointsSection.hidden = !group;
				if (group) {
					members.update(protectedVolumes(name));
					const seen = [...(state.points.get(name) || new Map()).values()].sort((a, b) => b.point - a.point);
					points.update(seen.slice(0, 50));
					drawLagChart(chart, name, group.rpo_target);
				}
				const replicaNames = new Set(groupVms.flatMap((vm) => (vm.disks || []).map((d) => d.replica)));
				const held = ((state.volumes && state.volumes.volumes) || []).filter((v) => v.kind !== 'protected' && replicaNames.has(v.name));
				replicaSection.hidden = held.length === 0;
				replicaMembers.update(held);
				vmTable.update(groupVms);
				runs.update(runList.slice(0, 20));
				if (state.session)
					drawActions(group, groupVms);
			},
			onEvent(event) {
				if (event.kind === 'step' || event.kind === 'info')
					kick();
			},
			onEvents() {
				this.update();
			},
		};
	}

	async function startRun(body) {
		const answer = await api('POST', '/v1/runs', body);
		notify(`Run ${answer.run} (${body.kind} of ${body.group || body.vm || 'every VM'}) started.`);
		location.hash = `#/run/${answer.run}`;
	}

	/* The lag of a group in the last hour, from this tab's samples (invariant 5), as SVG. */
	function drawLagChart(figure, name, rpoTarget) {
		const W = 640, H = 220, left = 56, right = 16, top = 14, bottom = 30;
		const now = Date.now(), start = now - HOUR_MS;
		const samples = (state.lag.get(name) || []).filter((s) => s[0] >= start && s[1] !== null);
		const rpoMs = rpoTarget ? rpoTarget * 1000 : 0;
		const highest = samples.reduce((m, s) => Math.max(m, s[1]), 0);
		const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400];
		const top_ms = Math.max(highest, rpoMs, 10000) * 1.1;
		const step = (steps.find((s) => top_ms / (s * 1000) <= 5) || 86400) * 1000;
		const ymax = Math.ceil(top_ms / step) * step;
		const x = (t) => left + ((t - start) / HOUR_MS) * (W - left - right);
		const y = (v) => top + (1 - v / ymax) * (H - top - bottom);
		const titleId = `lag-title-${name}`, descId = `lag-desc-${name}`;
		const latest = samples.length ? samples[samples.length - 1][1] : null;
		const description = samples.length
			? `Lag now ${formatSeconds(latest)}, highest in the samples ${formatSeconds(highest)}` +
				(rpoMs ? `, RPO target ${formatSeconds(rpoMs)}` : '') +
				`; ${samples.length} samples since ${formatTime(Math.max(state.lagSince, samples[0][0]))}.`
			: 'No sample yet: the chart fills while this console is open.';
		const chart = svg('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${titleId} ${descId}`, id: 'lag-chart'},
			svg('title', {id: titleId, text: `Lag of group ${name}, last hour`}),
			svg('desc', {id: descId, text: description}));
		for (let v = 0; v <= ymax; v += step) {
			append(chart,
				svg('line', {class: 'chart-grid', x1: left, x2: W - right, y1: y(v), y2: y(v)}),
				svg('text', {class: 'chart-label', x: left - 6, y: y(v) + 4, 'text-anchor': 'end', text: axisLabel(v)}));
		}
		for (let m = 60; m >= 0; m -= 15) {
			const t = now - m * 60000;
			append(chart,
				svg('line', {class: 'chart-grid', x1: x(t), x2: x(t), y1: top, y2: H - bottom}),
				svg('text', {class: 'chart-label', x: x(t), y: H - bottom + 16, 'text-anchor': m === 0 ? 'end' : 'middle',
					text: m === 0 ? 'now' : `−${m} min`}));
		}
		append(chart, svg('line', {class: 'chart-axis', x1: left, x2: W - right, y1: y(0), y2: y(0)}));
		if (rpoMs)
			append(chart,
				svg('line', {class: 'chart-rpo', x1: left, x2: W - right, y1: y(rpoMs), y2: y(rpoMs)}),
				svg('text', {class: 'chart-rpo-label', x: W - right - 4, y: y(rpoMs) - 5, 'text-anchor': 'end', text: 'RPO target'}));
		if (samples.length > 1)
			append(chart, svg('polyline', {class: 'chart-lag', points: samples.map((s) => `${x(s[0]).toFixed(1)},${y(s[1]).toFixed(1)}`).join(' ')}));
		if (samples.length)
			append(chart, svg('circle', {class: 'chart-dot', r: 3, cx: x(samples[samples.length - 1][0]), cy: y(latest)}));
		else
			append(chart, svg('text', {class: 'chart-empty', x: W / 2, y: H / 2, 'text-anchor': 'middle', text: 'No sample yet'}));
		clear(figure);
		append(figure, chart, h('figcaption', {text: description}));
	}

	/* A short label for the lag axis: 30 s, 1.5 min, 2 h. */
	function axisLabel(ms) {
		const trim = (n) => String(Number(n.toFixed(1)));
		if (ms < 60000)
			return `${Math.round(ms / 1000)} s`;
		if (ms < 3600000)
			return `${trim(ms / 60000)} min`;
		return `${trim(ms / 3600000)} h`;
	}

	/* ---- VMs ---- */

	function pageVms(main) {
		const table = dataTable({
			caption: 'Protected VMs known at this site',
			empty: 'No VM is protected here (ferry vm protect at the primary site).',
			key: (vm) => vm.name,
			columns: [
				{label: 'VM', cell: (vm) => vm.name},
				{label: 'Role here', cell: (vm) => badge(vm.role)},
				{label: 'Group', cell: (vm) => vm.group ? groupLink(vm.group) : '—'},
				{label: 'Order', num: true, cell: (vm) => vm.order === null || vm.order === undefined ? '—' : String(vm.order)},
				{label: 'Disks', cell: (vm) => diskList(vm.disks)},
			],
		});
		append(main, h('h1', {text: 'Virtual machines'}), table);
		return {
			async update() {
				try {
					table.update(await refreshVms());
				} catch (error) {
					report(error);
				}
			},
		};
	}

	function diskList(disks) {
		if (!disks || !disks.length)
			return '—';
		return h('ul', {class: 'reasons'}, disks.map((d) =>
			h('li', null, h('span', {class: 'mono', text: d.target || '?'}), `: ${d.source || '?'} → replica ${d.replica || '?'}`)));
	}

	/* ---- Runs ---- */

	function pageRuns(main) {
		const table = dataTable({
			caption: 'Cutover runs at this site, newest first',
			empty: 'No run yet.',
			key: (r) => r.run,
			columns: [
				{label: 'Run', cell: (r) => runLink(r.run)},
				{label: 'Kind', cell: (r) => r.kind},
				{label: 'Target', cell: (r) => r.target},
				{label: 'Status', cell: (r) => badge(r.status)},
				{label: 'Started', cell: (r) => timeElement(r.started_ms)},
				{label: 'Duration', num: true, cell: (r) => r.status === 'running' ? h('span', {class: 'live', 'data-running': r.started_ms}) : formatDuration(r.total_ms || (r.ended_ms - r.started_ms))},
				{label: 'Steps', num: true, cell: (r) => String((r.steps || []).length)},
				{label: 'Reason', cell: (r) => r.reason || ''},
			],
		});
		append(main, h('h1', {text: 'Runs'}),
			h('p', {class: 'help', text: 'Failovers, test failovers, migrations and reprotects, each with its ordered, timed steps. ' +
				'Start one from a group\'s page.'}),
			table);
		return {
			async update() {
				try {
					const answer = await api('GET', '/v1/runs');
					table.update(answer.runs || []);
				} catch (error) {
					report(error);
				}
			},
			onEvent(event) {
				if (event.kind === 'step' || event.kind === 'info' || event.kind === 'error')
					kick();
			},
		};
	}

	function pageRun(main, idText) {
		const id = Number(idText);
		const heading = h('h1', {text: `Run ${id}`});
		const stateLine = h('p', {id: 'run-status', 'aria-live': 'polite'});
		const summary = h('dl', {class: 'summary'});
		const actions = h('div', {class: 'actions', id: 'run-actions'});
		const vms = dataTable({
			caption: 'VMs of the run',
			empty: 'No VM result yet.',
			key: (vm) => vm.name,
			columns: [
				{label: 'VM', cell: (vm) => vm.name},
				{label: 'Point', num: true, cell: (vm) => vm.point ? String(vm.point) : '—'},
				{label: 'RTO', num: true, cell: (vm) => vm.rto_ms !== undefined ? formatDuration(vm.rto_ms) : '—'},
				{label: 'RPO', num: true, cell: (vm) => vm.rpo_ms !== undefined ? formatDuration(vm.rpo_ms) : '—'},
				{label: 'Shares the group\'s point', cell: (vm) => vm.shares_group_point === false ? 'no' : 'yes'},
			],
		});
		const steps = dataTable({
			caption: 'Steps, in order (they appear as they happen)',
			empty: 'No step yet.',
			id: 'steps',
			class: 'steps',
			key: (s) => s.seq,
			columns: [
				{label: '#', num: true, cell: (s) => String(s.seq)},
				{label: 'Step', cell: (s) => s.name},
				{label: 'Result', class: 'result', cell: (s) => badge(s.result)},
				{label: 'Detail', cell: (s) => h('span', {class: 'wrap', text: s.detail || ''})},
				{label: 'Started', cell: (s) => timeElement(s.started_ms)},
				{label: 'Duration', num: true, cell: (s) => s.result === 'running' ? h('span', {class: 'live', 'data-running': s.started_ms}) : formatDuration(s.duration_ms)},
			],
		});
		/* The steps table is not a live region (its running duration ticks every second); this
		 * says each step's beginning and end once. */
		const stepsLive = h('p', {class: 'visually-hidden', 'aria-live': 'polite', id: 'steps-live'});
		const stepsSeen = new Map();
		let stepsLoaded = false;
		const vmSection = section('VMs', 'r-vms', vms);
		append(main, heading, stateLine, summary, actions, section('Steps', 'r-steps', stepsLive, steps), vmSection);
		let timer = 0, stopped = false, drawnActions = '';

		function drawActions(run) {
			const migration = run.kind === 'migrate-live' || run.kind === 'migrate-cold';
			const stuck = run.status === 'interrupted' || run.status === 'failed';
			const key = JSON.stringify([run.status, run.kind]);
			if (key === drawnActions)
				return;
			drawnActions = key;
			clear(actions);
			if (!can('operator'))
				return;
			if (run.status === 'running' && migration)
				append(actions, actionButton('Abort', 'abort', async () => {
					const yes = await confirmDialog({
						title: `Abort run ${id}?`,
						text: 'The migration stops at its next safe point (before the shutdown, or during the memory copy), ' +
							'with the VM running at the source.',
						confirmLabel: 'Abort', danger: true,
					});
					if (!yes)
						return;
					await api('POST', `/v1/runs/${id}/abort`);
					notify(`Abort of run ${id} requested: it stops at its next safe point.`);
					refresh();
				}, 'danger'));
			if (stuck)
				append(actions, actionButton('Resume', 'run-resume', async () => {
					await api('POST', `/v1/runs/${id}/resume`);
					notify(`Run ${id} resumed.`);
					refresh();
				}, 'primary'));
			if (stuck && can('admin'))
				append(actions, actionButton('Roll back…', 'rollback', async () => {
					const yes = await confirmDialog({
						title: `Roll back run ${id}?`,
						text: 'A migration that never got its VM running at the destination starts it at the source again; ' +
							'a test failover is cleaned up. The rollback is a run of its own.',
						confirmLabel: 'Roll back', danger: true,
					});
					if (!yes)
						return;
					const answer = await api('POST', `/v1/runs/${id}/rollback`);
					notify(`Rollback of run ${id} started as run ${answer.run}.`);
					location.hash = `#/run/${answer.run}`;
				}, 'danger'));
		}

		let inFlight = false, again = false;

		/* One request at a time: a step event during a poll asks for one more after it. */
		async function refresh() {
			clearTimeout(timer);
			if (stopped)
				return;
			if (inFlight) {
				again = true;
				return;
			}
			inFlight = true;
			try {
				await refreshOnce();
			} finally {
				inFlight = false;
			}
			if (again && !stopped) {
				again = false;
				refresh();
			}
		}

		async function refreshOnce() {
			let run = null;
			try {
				run = await api('GET', `/v1/runs/${id}`);
			} catch (error) {
				if (error.status === 404) {
					stateLine.textContent = error.message;
					return;
				}
				if (error.status !== 401 && error.code !== 'stale')
					showError(error.message);
			}
			if (stopped)
				return;
			if (run) {
				heading.textContent = `Run ${id}: ${run.kind} of ${run.target}`;
				document.title = `${heading.textContent} — ferry console`;
				setContent(stateLine, 'Status: ', badge(run.status), run.reason ? ` — ${run.reason}` : '');
				fillSummary(summary, [
					['Kind', run.kind],
					['Target', run.target === '*' ? 'every VM with a test failover' : (groupsHere().some((g) => g.name === run.target) ||
						(state.vms || []).some((vm) => vm.group === run.target) ? groupLink(run.target) : run.target)],
					['Started', timeElement(run.started_ms)],
					['Ended', run.status === 'running' ? 'still running' : timeElement(run.ended_ms)],
					['Total', run.status === 'running' ? h('span', {class: 'live', 'data-running': run.started_ms}) : formatDuration(run.total_ms)],
				]);
				steps.update(run.steps || []);
				const news = [];
				for (const step of run.steps || []) {
					if (stepsLoaded && stepsSeen.get(step.seq) !== step.result)
						news.push(`Step ${step.seq}, ${step.name}: ${step.result}.`);
					stepsSeen.set(step.seq, step.result);
				}
				if (news.length)
					stepsLive.textContent = news.join(' ');
				stepsLoaded = true;
				vms.update(run.vms || []);
				vmSection.hidden = !(run.vms && run.vms.length);
				drawActions(run);
			}
			timer = setTimeout(refresh, run && run.status !== 'running' ? POLL_MS : RUN_POLL_MS);
		}

		return {
			update(reason) {
				if (reason === 'route')
					refresh();
			},
			onEvent(event) {
				if ((event.kind === 'step' && event.object === `run ${id}`) ||
					(event.message || '').startsWith(`run ${id} `))
					refresh();
			},
			stop() {
				stopped = true;
				clearTimeout(timer);
			},
		};
	}

	/* ---- Events ---- */

	function pageEvents(main) {
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

	/* ---- Audit (admin) ---- */

	function pageAudit(main) {
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

	function pageTokens(main) {
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

	document.addEventListener('DOMContentLoaded', boot);
}());
