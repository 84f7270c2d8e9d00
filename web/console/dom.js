/* Small helpers of the console: elements built without markup (invariant 1 in app.js), times,
 * durations and sizes in words, the live texts that tick() redraws every second, and the notice
 * and alert regions above <main>. */

import {state} from './state.js';

/* h(tag, props, ...children): an element; props: class, text, on*, attributes. */
export function h(tag, props, ...children) {
	const element = document.createElement(tag);
	setProps(element, props);
	append(element, children);
	return element;
}

export function svg(tag, props, ...children) {
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

export function append(element, ...children) {
	for (const child of children.flat(Infinity)) {
		if (child === null || child === undefined || child === false)
			continue;
		element.append(child instanceof Node ? child : document.createTextNode(String(child)));
	}
	return element;
}

export function clear(element) {
	while (element.firstChild)
		element.firstChild.remove();
	return element;
}

/* Replaces element's content only when it changed: a live region speaks only then. */
export function setContent(element, ...children) {
	const fresh = append(document.createElement('div'), ...children);
	if (fresh.innerHTML === element.innerHTML)
		return element;
	clear(element);
	while (fresh.firstChild)
		element.append(fresh.firstChild);
	return element;
}

export const $ = (id) => document.getElementById(id);

function pad(n) {
	return String(n).padStart(2, '0');
}

export function formatTime(ms) {
	if (!ms)
		return '—';
	const d = new Date(ms);
	return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
		`${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function timeElement(ms) {
	if (!ms)
		return '—';
	return h('time', {datetime: new Date(ms).toISOString(), text: formatTime(ms)});
}

/* 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min */
export function formatDuration(ms) {
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
export function formatSeconds(ms) {
	return ms < 60000 ? `${Math.max(0, Math.round(ms / 1000))} s` : formatDuration(ms);
}

export function formatBytes(n) {
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

export function formatRate(bytesPerSecond) {
	return bytesPerSecond ? `${formatBytes(bytesPerSecond)}/s` : '—';
}

/* A state word, coloured by class and written out (never colour alone). */
export function badge(word, extraClass) {
	const text = word || 'unknown';
	return h('span', {class: `badge s-${text.replace(/[^a-z-]/g, '')} ${extraClass || ''}`.trim(), text});
}

/* Live texts, redrawn every second by tick(): "12 s ago", "in 20 s", a running lag. */
export function since(ms) {
	return ms ? h('span', {class: 'live', 'data-since': ms}) : '—';
}

export function until(ms) {
	return ms ? h('span', {class: 'live', 'data-until': ms}) : '—';
}

export function lagSince(ms) {
	return ms ? h('span', {class: 'live', 'data-lag': ms}) : '—';
}

export function tick(root) {
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

export function notify(message) {
	$('notice').textContent = message;
}

/* The alert region: an action's failure stays until the next action or page; one of the
 * polling goes once a poll succeeds again. */
export function showError(message, fromPoll) {
	$('alert').textContent = message || '';
	state.alertFromPoll = !!(message && fromPoll);
}

/* An API failure for the alert region; a 401 has already sent the page to the login, and an
 * answer to an older session is dropped. */
export function report(error) {
	if (error.status !== 401 && error.code !== 'stale')
		showError(error.message);
}

export function clearPollError() {
	if (state.alertFromPoll)
		showError('');
}
