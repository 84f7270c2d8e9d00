/* The Runs page (#/runs) and a run's page (#/run/ID): a run's steps as they happen, its VMs'
 * RTO and RPO, and Abort, Resume and Roll back for the roles that may use them. */

import {POLL_MS, RUN_POLL_MS, state, can} from './state.js';
import {
	h, append, clear, setContent, timeElement, formatDuration, badge, notify, showError, report
} from './dom.js';
import {api, kick, groupsHere} from './api.js';
import {
	section, dataTable, fillSummary, groupLink, runLink, actionButton, confirmDialog
} from './widgets.js';

export function pageRuns(main) {
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

export function pageRun(main, idText) {
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
