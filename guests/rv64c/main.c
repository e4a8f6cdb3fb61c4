/* rv64c: compressed instructions (hand-written in compressed.S) and illegal encodings. */
#include "guest.h"

extern void run_compressed(uint64_t *out);

static const char *const NAMES[] = {
    "c.li -32", "c.li 31", "c.lui -32", "c.lui 31", "c.addi -1", "c.addiw overflow", "c.addiw 0",
    "c.addi16sp -32", "c.addi4spn 1020", "c.slli 1", "c.srli 63", "c.srai 4", "c.andi -2", "c.andi 15",
    "c.add", "c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw", "c.lw", "c.ld", "c.sw", "c.sd",
    "c.ldsp", "c.lwsp", "c.fld/c.fsd", "c.fsdsp/c.fldsp", "c.jalr link", "branch mask",
};
#define N (sizeof(NAMES) / sizeof(NAMES[0]))

void mtrap_handler(struct trap_frame *f)
{
    printf("trap mcause=%lx mtval=%lx\n", f->cause, f->cause == 3 ? 0 : f->tval);
    f->epc += insn_len(f->epc);
}

int main(void)
{
    static uint64_t out[N];
    puts_("rv64c known answers\n");
    run_compressed(out);
    for (unsigned i = 0; i < N; i++)
        print_hex(NAMES[i], out[i]);

    puts_("illegal compressed encodings:\n");
    __asm__ volatile(".2byte 0x0000"); /* all zeros: defined illegal */
    __asm__ volatile(".2byte 0x0008"); /* c.addi4spn a0, sp, 0: reserved */
    __asm__ volatile(".2byte 0x6181\n nop"); /* c.lui x3, 0: reserved (nop keeps 4-byte alignment) */
    __asm__ volatile(".2byte 0x9002\n nop"); /* c.ebreak */
    puts_("rv64c done\n");
    return 0;
}
