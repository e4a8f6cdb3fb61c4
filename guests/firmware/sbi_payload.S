# An S-mode payload for Debian's OpenSBI (fw_jump / fw_dynamic): prints through the legacy SBI
# console, arms a timer through the SBI TIME extension, takes the supervisor timer interrupt and
# powers off through SBI SRST. Used to check rewind against QEMU on firmware we did not write.
    .section .text
    .globl _start
_start:
    la sp, stack_top
    la a0, msg_hello
    call puts
    la t0, trap
    csrw stvec, t0
    rdtime t1
    li t2, 100000
    add a0, t1, t2
    li a7, 0x54494D45       # SBI TIME extension: set_timer(now + 10 ms)
    li a6, 0
    ecall
    li t0, 0x20             # sie.STIE
    csrs sie, t0
    csrsi sstatus, 2        # sstatus.SIE
1:  wfi
    j 1b

    .align 2                # stvec needs a 4-byte aligned base
trap:
    la a0, msg_timer
    call puts
    li a7, 0x53525354       # SBI SRST: shutdown, no reason
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
2:  j 2b

puts:
    mv t3, a0
3:  lbu a0, 0(t3)
    beqz a0, 4f
    li a7, 1                # legacy console_putchar
    ecall
    addi t3, t3, 1
    j 3b
4:  ret

    .section .rodata
msg_hello: .asciz "hello from S-mode payload\n"
msg_timer: .asciz "timer interrupt via SBI, shutting down\n"
    .bss
    .align 4
    .space 4096
stack_top:
