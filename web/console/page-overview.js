/* The Overview page (#/overview): this site's health, the protection groups it takes points of
 * with their lag, the groups and volumes it receives, and the replica sites it sends to. */

import {state} from './state.js';
import {
	h, append, clear, formatSeconds, formatBytes, formatRate, badge, since, until, report
} from './dom.js';
import {refreshVms, refreshSites, groupsHere, protectedVolumes} from './api.js';
import {section, dataTable, groupLink, lagCell, pointOfSnapshot} from './widgets.js';

export function pageOverview(main) {
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

function groupThroughput(name) {
	return protectedVolumes(name).reduce((sum, v) => sum + (v.throughput || 0), 0);
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
