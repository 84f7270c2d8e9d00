/* Talking to ferryd: api() (JSON, the session's CSRF token on every change, the server's own
 * message on failure), the polling of what every page shows (health, volumes with their lag
 * samples and points, VMs, sites) and the event stream.
 * sessionLost() comes from app.js, which imports this file too: safe, as neither calls the other
 * while the modules load. */

import {POLL_MS, HOUR_MS, EVENTS_KEPT, LAG_KEY, state} from './state.js';
import {h, setContent, $, badge, showError, report, clearPollError} from './dom.js';
import {sessionLost} from './app.js';

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
export async function api(method, path, body) {
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

/* ---- data shared by the pages: health, volumes (and lag samples), VMs, sites ---- */

/* Polls what every page needs, then the page itself; again in POLL_MS. */
export async function poll() {
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
export function kick() {
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

export async function refreshVms() {
	state.vms = (await api('GET', '/v1/vms')).vms || [];
	return state.vms;
}

export async function refreshSites() {
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

export function groupsHere() {
	return (state.volumes && state.volumes.groups) || [];
}

export function protectedVolumes(group) {
	const volumes = (state.volumes && state.volumes.volumes) || [];
	return volumes.filter((v) => v.kind === 'protected' && (group === undefined || v.group === group));
}

/* Invariant 5 (app.js): one lag sample per group per poll, an hour at most, kept in this tab. */
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
export function forgetHistory() {
	state.lag.clear();
	state.points.clear();
	state.lagSince = Date.now();
	try {
		sessionStorage.removeItem(LAG_KEY);
	} catch (error) {
		/* nothing kept */
	}
}

export function loadLag() {
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

export async function loadEvents() {
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

export function openStream() {
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
