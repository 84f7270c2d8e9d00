/*
 * A guest without an operating system, for ferry's libvirt tests: a 512-byte boot sector that
 * prints "tick N\r\n" on COM1 once a second forever (N = 0, 1, 2...), so that a test reading the
 * serial log sees the guest run, and sees that it kept running across a migration: the counter
 * never skips and never goes back.
 *
 * 16-bit real mode, loaded by the BIOS at 0000:7c00. The second comes from the BIOS tick count at
 * 0040:006c (18.2 Hz, kept by the BIOS's timer interrupt): the loop waits with hlt between ticks,
 * so an idle guest costs little CPU under TCG and dirties almost no memory (migrations converge).
 * N is kept as ten ASCII digits and incremented in place, which avoids a 32-bit division.
 *
 * At boot it fills 16 MiB above 1 MiB with a non-zero pattern, once: QEMU sends a zero page as a
 * few bytes, so an all-zero guest moves in well under a second even at 1 MiB/s, and a test of a
 * live migration that cannot finish in time would depend on timing. 16 MiB at 1 MiB/s cannot.
 *
 * Built with DIRTY_PAGES=N (build.sh's third argument), it also changes N of those pages at each
 * timer tick, 18.2 times a second: a guest dirtying N x 4 KiB x 18.2 bytes per second.
 */
	.code16
	.text
	.globl	start
start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp
	ljmp	$0, $main		/* %cs:%ip = 0:7c..., whatever the BIOS jumped with */

main:
	/* A20 on (fast gate), then "unreal mode": %es keeps a 4 GiB limit once back in real mode,
	 * so that 32-bit addresses reach above 1 MiB. Interrupts are still off. */
	inb	$0x92, %al
	orb	$0x02, %al
	andb	$0xfe, %al
	outb	%al, $0x92
	lgdt	gdt_pointer
	movl	%cr0, %eax
	orb	$1, %al
	movl	%eax, %cr0
	movw	$8, %bx
	movw	%bx, %es
	andb	$0xfe, %al
	movl	%eax, %cr0
	xorw	%bx, %bx
	movw	%bx, %es
	movl	$0x100000, %edi
	movl	$0x400000, %ecx		/* 16 MiB in 4-byte words */
	movl	$0x5a5aa5a5, %eax
	cld
	addr32	rep stosl

	/* COM1: 115200 baud (divisor 1), 8N1, FIFOs on. QEMU ignores the speed, real UARTs do not. */
	movw	$0x3fb, %dx
	movb	$0x80, %al		/* DLAB on */
	outb	%al, %dx
	movw	$0x3f8, %dx
	movb	$1, %al
	outb	%al, %dx
	incw	%dx
	xorb	%al, %al
	outb	%al, %dx
	movw	$0x3fb, %dx
	movb	$0x03, %al		/* DLAB off, 8 bits, no parity, 1 stop bit */
	outb	%al, %dx
	movw	$0x3fa, %dx
	movb	$0x07, %al
	outb	%al, %dx
	sti				/* the BIOS timer interrupt keeps 0040:006c counting */

loop:
	movw	$msg, %si
	call	puts
	/* the digits of N without leading zeros (at least one) */
	movw	$digits, %si
skip:
	cmpw	$digits_last, %si
	je	print
	cmpb	$'0', (%si)
	jne	print
	incw	%si
	jmp	skip
print:
	call	puts
	movw	$crlf, %si
	call	puts

	/* N += 1, decimal, from the last digit */
	movw	$digits_last, %si
carry:
	incb	(%si)
	cmpb	$'9', (%si)
	jbe	wait
	movb	$'0', (%si)
	decw	%si
	cmpw	$digits, %si
	jae	carry

wait:	/* 18 BIOS ticks = 0.989 s */
	movw	0x46c, %bx
1:	hlt
#if DIRTY_PAGES
	/* after each wake-up (the 18.2 Hz timer), one word of each of the next DIRTY_PAGES pages
	 * of the 16 MiB is changed, round and round: a steady dirty rate for QEMU to resend */
	movl	dirty_at, %edi
	movw	$DIRTY_PAGES, %cx
3:	incl	%es:(%edi)
	addl	$4096, %edi
	cmpl	$0x1100000, %edi
	jb	4f
	movl	$0x100000, %edi
4:	loop	3b
	movl	%edi, dirty_at
#endif
	movw	0x46c, %ax
	subw	%bx, %ax
	cmpw	$18, %ax
	jb	1b
	jmp	loop

/* puts: the NUL-terminated string at %si to COM1, waiting for the transmitter each time */
puts:
	lodsb
	testb	%al, %al
	jz	2f
	movb	%al, %ah
	movw	$0x3fd, %dx
1:	inb	%dx, %al
	testb	$0x20, %al
	jz	1b
	movw	$0x3f8, %dx
	movb	%ah, %al
	outb	%al, %dx
	jmp	puts
2:	ret

gdt:	.quad	0
	.quad	0x00cf92000000ffff	/* data: base 0, limit 4 GiB, writable */
gdt_pointer:
	.word	15
	.long	gdt
msg:	.asciz	"tick "
crlf:	.asciz	"\r\n"
#if DIRTY_PAGES
dirty_at: .long	0x100000
#endif
digits:	.ascii	"000000000"
digits_last:
	.asciz	"0"

	.org	510
	.word	0xaa55
