/* The VMs page (#/vms): every protected VM known at this site, with its role here, its group,
 * its boot order and its disks. */

import {h, append, badge, report} from './dom.js';
import {refreshVms} from './api.js';
import {dataTable, groupLink} from './widgets.js';

export function pageVms(main) {
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
