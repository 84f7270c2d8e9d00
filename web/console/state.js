/* What this tab knows between requests: the session, the last answers of the API, the lag
 * samples, points and events it has seen, and the limits that bound them. The other files read
 * and write it here; nothing in this file touches the page. */

const ROLE_RANK = {viewer: 0, operator: 1, admin: 2};
export const POLL_MS = 5000;
export const RUN_POLL_MS = 1000;
export const HOUR_MS = 3600 * 1000;
export const EVENTS_KEPT = 500;
export const LAG_KEY = 'ferry.lag';

export const state = {
	session: null, /* {name, role, csrf, expires_ms} */
	health: null,
	volumes: null, /* the last GET /v1/volumes */
	volumesAt: 0,
	vms: null,
	sites: null,
	lag: new Map(), /* group -> [[time_ms, lag_ms], ...], oldest first (invariant 5 in app.js) */
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

export function can(role) {
	return state.session && ROLE_RANK[state.session.role] >= ROLE_RANK[role];
}
