/* The U-mode process of the vm guest: mapped at VA 0x40000000, position independent. */
    .file "user.S"
    .section .user_page, "ax"
    .globl user_start
user_start:
    li t0, 0x40001000
    ld a0, 0(t0)
    addi a0, a0, 1
    sd a0, 8(t0)
    li a7, 1
    ecall               /* syscall 1: print a0 */
    li t0, 0x40002000
    ld a0, 0(t0)        /* kernel-only page: load page fault */
    li t0, 0x40000000
    sd a0, 0(t0)        /* code page, not writable: store page fault */
    la t0, user_ret     /* pc-relative, so it works at the user VA */
    jalr ra, 0(t0)      /* executable user page: comes back via ret below */
    li a7, 2
    ecall               /* syscall 2: exit */
1:  j 1b
    .globl user_ret
user_ret:
    ret
