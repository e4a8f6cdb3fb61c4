/* Hand-written compressed instructions; each result is stored to out[] (a0). */
    .file "compressed.S"
    .option rvc
    .text
    .globl run_compressed
    .align 2
run_compressed:
    addi sp, sp, -64
    sd s0, 56(sp)
    sd s1, 48(sp)
    mv t6, a0
    /* c.li / c.lui / c.addi / c.addiw */
    c.li a1, -32
    sd a1, 0(t6)
    c.li a1, 31
    sd a1, 8(t6)
    c.lui a2, 0xfffe0          /* nzimm = -32 << 12 */
    sd a2, 16(t6)
    c.lui a2, 0x1f
    sd a2, 24(t6)
    c.addi a1, -1
    sd a1, 32(t6)
    li a3, 0x7fffffff
    c.addiw a3, 1
    sd a3, 40(t6)
    c.addiw a3, 0              /* sext.w */
    sd a3, 48(t6)
    /* c.addi16sp / c.addi4spn: relative to sp */
    mv a4, sp
    c.addi16sp sp, -32
    sub a5, sp, a4
    c.addi16sp sp, 32
    sd a5, 56(t6)
    c.addi4spn a5, sp, 1020
    sub a5, a5, sp
    sd a5, 64(t6)
    /* shifts and logic */
    li s0, 0x8000000000000f0f
    mv s1, s0
    c.slli s1, 1
    sd s1, 72(t6)
    mv s1, s0
    c.srli s1, 63
    sd s1, 80(t6)
    mv s1, s0
    c.srai s1, 4
    sd s1, 88(t6)
    mv s1, s0
    c.andi s1, -2
    sd s1, 96(t6)
    mv s1, s0
    c.andi s1, 15
    sd s1, 104(t6)
    li a0, 0x123456789
    li a1, 0xfedcba987
    c.mv a2, a0
    c.add a2, a1
    sd a2, 112(t6)
    mv a2, a0
    c.sub a2, a1
    sd a2, 120(t6)
    mv a2, a0
    c.xor a2, a1
    sd a2, 128(t6)
    mv a2, a0
    c.or a2, a1
    sd a2, 136(t6)
    mv a2, a0
    c.and a2, a1
    sd a2, 144(t6)
    mv a2, a0
    c.subw a2, a1
    sd a2, 152(t6)
    mv a2, a0
    c.addw a2, a1
    sd a2, 160(t6)
    /* loads/stores relative to a register and to sp */
    la s0, cdata
    c.lw a3, 4(s0)
    sd a3, 168(t6)
    c.ld a3, 8(s0)
    sd a3, 176(t6)
    li a4, -2
    c.sw a4, 16(s0)
    c.sd a4, 24(s0)
    ld a3, 16(s0)
    sd a3, 184(t6)
    ld a3, 24(s0)
    sd a3, 192(t6)
    li a4, 0x5566778899aabbcc
    c.sdsp a4, 8(sp)
    c.swsp a4, 16(sp)
    c.ldsp a5, 8(sp)
    sd a5, 200(t6)
    c.lwsp a5, 16(sp)
    sd a5, 208(t6)
    c.fld fa0, 8(s0)
    c.fsd fa0, 32(s0)
    ld a3, 32(s0)
    sd a3, 216(t6)
    c.fsdsp fa0, 24(sp)
    c.fldsp fa1, 24(sp)
    fmv.x.d a3, fa1
    sd a3, 224(t6)
    /* control flow: c.j, c.beqz, c.bnez, c.jr, c.jalr */
    li a0, 0
    c.j 1f
    c.addi a0, 1
1:  li a1, 0
    c.beqz a1, 2f
    c.addi a0, 2
2:  c.bnez a1, 3f
    c.addi a0, 4
3:  la a2, 4f
    c.jr a2
    c.addi a0, 8
4:  la a2, 5f
    mv s1, ra
    c.jalr a2
6:  c.addi a0, 16
    j 7f
5:  la a3, 6b
    sub a3, ra, a3       /* link of c.jalr must be pc + 2 = label 6 */
    sd a3, 232(t6)
    c.jr ra
7:  mv ra, s1
    sd a0, 240(t6)
    ld s0, 56(sp)
    ld s1, 48(sp)
    addi sp, sp, 64
    ret

    .data
    .align 3
cdata:
    .dword 0x8765432112345678
    .dword 0x0123456789abcdef
    .dword 0
    .dword 0
    .dword 0
