# xencall's test guest: a freestanding 32-bit PVH guest.
#
# Xen enters it at the XEN_ELFNOTE_PHYS32_ENTRY address in flat 32-bit protected mode with
# paging and interrupts off. It loops forever: adopt the write set dom0 published in the
# CONTROL page, write the pattern for (gfn, iteration) over each page of the set, count the
# iteration in the COUNTER page. The layout, the protocol and the pattern are defined once, in
# src/testing/test-guest-layout.ts; every constant below comes from there through the
# assembler's --defsym (test-guest-image.ts), so the TypeScript side and this file cannot
# disagree.
#
# Registers in the loop: %ebp = generation of the set in use (odd: none yet); %ebx = index in
# the set; the fill uses %eax (seed), %ecx, %edx, %esi, %edi. Nothing is pushed: the only pages
# the guest writes are its write set, COUNTER, and WORK when the set changes.

        .code32

CONTROL = CONTROL_GFN * 4096
COUNTER = COUNTER_GFN * 4096
WORK    = WORK_GFN * 4096
STACK_TOP = (STACK_GFN + 1) * 4096

# The ELF note Xen's loader looks for (xen/include/public/elfnote.h: name "Xen", type 18).
        .section .note.Xen, "a", @note
        .balign 4
        .long 2f - 1f
        .long 4f - 3f
        .long ELFNOTE_PHYS32_ENTRY
1:      .asciz "Xen"
2:      .balign 4
3:      .long _start
4:      .balign 4

# The image header at the image's first byte: the mock recognises the guest by it.
        .section .text.header, "ax"
        .globl image_header
image_header:
        .ascii "xencall testgst\0"
        .long GUEST_VERSION
        .long _start
        .long _image_end
        .long 0

        .text
        .globl _start
_start:
        cli
        cld
        movl $STACK_TOP, %esp

        # A line on the debug port: Xen prints it as "(dN) ..." with guest_loglvl=all.
        movl $banner, %esi
1:      lodsb
        testb %al, %al
        jz 2f
        outb %al, $0xe9
        jmp 1b
2:
        movl $1, %ebp
        movl $0xffffffff, COUNTER + COUNTER_WRITING

next_iteration:
        movl CONTROL + CONTROL_GENERATION, %eax
        cmpl %eax, %ebp
        je run_set
        testl $1, %eax
        jnz run_set                     # dom0 is rewriting the set: keep the old one
        cmpl $CONTROL_MAGIC, CONTROL + CONTROL_MAGIC_OFF
        jne run_set
        cmpl $GUEST_VERSION, CONTROL + CONTROL_VERSION
        jne run_set
        movl CONTROL + CONTROL_COUNT, %ecx
        cmpl $MAX_WRITE_SET, %ecx
        ja run_set
        movl $0, WORK + WORK_COUNT      # a copy that races dom0 leaves an empty set
        movl CONTROL + CONTROL_PAGES, %edx
        movl %edx, WORK + WORK_PAGES
        movl %ecx, %ebx
        movl $(CONTROL + CONTROL_GFNS), %esi
        movl $(WORK + WORK_GFNS), %edi
        rep movsl
        cmpl CONTROL + CONTROL_GENERATION, %eax
        jne next_iteration              # the set changed while it was copied
        movl %ebx, WORK + WORK_COUNT
        movl %eax, %ebp
        movl %eax, COUNTER + COUNTER_GENERATION

run_set:
        xorl %ebx, %ebx
page_loop:
        cmpl WORK + WORK_COUNT, %ebx
        jae iteration_done
        movl WORK + WORK_GFNS(,%ebx,4), %ecx
        incl %ebx
        cmpl WORK + WORK_PAGES, %ecx
        jae page_loop                   # not a page of this guest
        leal -RESERVED_FIRST(%ecx), %eax
        cmpl $(RESERVED_END - RESERVED_FIRST), %eax
        jb page_loop                    # code, control, counter, work or stack
        movl %ecx, COUNTER + COUNTER_WRITING

        movl %ecx, %edi
        shll $12, %edi
        movl COUNTER + COUNTER_ITER_LO, %eax
        movl COUNTER + COUNTER_ITER_HI, %edx
        movl %eax, 0(%edi)
        movl %edx, 4(%edi)
        movl %ecx, 8(%edi)
        movl $PAGE_MAGIC, 12(%edi)
        imull $MIX_ITER_LO, %eax, %eax
        imull $MIX_ITER_HI, %edx, %edx
        xorl %edx, %eax
        imull $MIX_GFN, %ecx, %ecx
        xorl %ecx, %eax                 # %eax = seed
        movl $(4 * MIX_WORD), %edx      # %edx = i * MIX_WORD, from i = 4
        addl $16, %edi
        movl $1020, %ecx
fill:
        movl %edx, %esi
        xorl %eax, %esi
        movl %esi, (%edi)
        addl $MIX_WORD, %edx
        addl $4, %edi
        decl %ecx
        jnz fill
        jmp page_loop

iteration_done:
        movl $0xffffffff, COUNTER + COUNTER_WRITING
        addl $1, COUNTER + COUNTER_ITER_LO
        adcl $0, COUNTER + COUNTER_ITER_HI
        jmp next_iteration

        .section .rodata
banner:
        .asciz "xencall test guest running\n"

        .section .note.GNU-stack, "", @progbits
