/* A group's page (#/group/NAME): its state, members, replicas, points, VMs and runs, its lag
 * chart of the last hour (invariant 5 in app.js), and the actions an operator or an admin may
 * take on it (invariant 3). */

import {HOUR_MS, state, can} from './state.js';
import {
	h, svg, append, clear, setContent, formatTime, timeElement, formatDuration, formatSeconds,
	formatBytes, formatRate, badge, since, until, lagSince, notify, report
} from './dom.js';
import {api, kick, refreshVms, groupsHere, protectedVolumes} from './api.js';
import {
	section, dataTable, fillSummary, runLink, actionButton, confirmDialog, lagCell,
	pointOfSnapshot
} from './widgets.js';

export function pageGroup(main, name) {
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
					/* The prediction: null until ferryd has a few cycles of this group. */
					['Predicted lag', typeof group.predicted_lag_seconds === 'number'
						? formatSeconds(group.predicted_lag_seconds * 1000) + (group.lag_grows ? ', growing' : '')
						: 'not known yet'],
					['Change rate', formatRate(group.change_rate_bytes_per_second)],
					['Ship rate', formatRate(group.ship_rate_bytes_per_second)],
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
