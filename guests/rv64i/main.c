/* rv64i: known answers for every RV64I instruction, printed one per line. */
#include "check.h"

static volatile uint64_t trap_count;

/* Misaligned accesses that trap are reported and skipped. */
void mtrap_handler(struct trap_frame *f)
{
    printf("trap mcause=%lx mtval_off=%lx\n", f->cause, f->tval);
    trap_count++;
    f->epc += insn_len(f->epc);
}

static uint8_t mem[64] __attribute__((aligned(16)));

static void fill(void)
{
    for (unsigned i = 0; i < sizeof(mem); i++)
        mem[i] = (uint8_t)(0x80 + i * 7);
}

static void dump(const char *what)
{
    printf("%s:", what);
    for (unsigned i = 0; i < 32; i++)
        printf(" %02x", mem[i]);
    puts_("\n");
}

#define LOAD(op, off) ({ uint64_t __r; __asm__ volatile(op " %0, %1(%2)" : "=r"(__r) : "i"(off), "r"(mem) : "memory"); __r; })
#define STORE(op, v, base, off) __asm__ volatile(op " %0, %1(%2)" ::"r"((uint64_t)(v)), "i"(off), "r"(base) : "memory")

int main(void)
{
    puts_("rv64i known answers\n");
    TABLE_RR("add");
    TABLE_RR("sub");
    TABLE_RR("sll");
    TABLE_RR("srl");
    TABLE_RR("sra");
    TABLE_RR("slt");
    TABLE_RR("sltu");
    TABLE_RR("xor");
    TABLE_RR("or");
    TABLE_RR("and");
    TABLE_RR("addw");
    TABLE_RR("subw");
    TABLE_RR("sllw");
    TABLE_RR("srlw");
    TABLE_RR("sraw");

    for (unsigned i = 0; i < NVALS; i++) {
        uint64_t v = VALS[i];
        printf("imm %x: %lx %lx %lx %lx %lx %lx\n", i, ASM_RI("addi", v, -2048), ASM_RI("addi", v, 2047),
               ASM_RI("slti", v, -1), ASM_RI("sltiu", v, -1), ASM_RI("xori", v, -1), ASM_RI("ori", v, 0x555));
        printf("imm2 %x: %lx %lx %lx %lx %lx %lx\n", i, ASM_RI("andi", v, -16), ASM_RI("slli", v, 63),
               ASM_RI("srli", v, 63), ASM_RI("srai", v, 63), ASM_RI("slli", v, 1), ASM_RI("srai", v, 7));
        printf("immw %x: %lx %lx %lx %lx %lx %lx\n", i, ASM_RI("addiw", v, -2048), ASM_RI("addiw", v, 2047),
               ASM_RI("slliw", v, 31), ASM_RI("srliw", v, 31), ASM_RI("sraiw", v, 31), ASM_RI("sraiw", v, 0));
    }

    uint64_t r;
    __asm__ volatile("lui %0, 0x80000" : "=r"(r));
    print_hex("lui 0x80000", r);
    __asm__ volatile("lui %0, 0x7ffff" : "=r"(r));
    print_hex("lui 0x7ffff", r);
    __asm__ volatile("lui %0, 0xfffff" : "=r"(r));
    print_hex("lui 0xfffff", r);
    uint64_t a, b;
    __asm__ volatile("1: auipc %0, 0\n la %1, 1b" : "=r"(a), "=r"(b));
    print_hex("auipc 0 - label", a - b);
    __asm__ volatile("1: auipc %0, 0x80000\n la %1, 1b" : "=r"(a), "=r"(b));
    print_hex("auipc 0x80000 - label", a - b);
    __asm__ volatile("1: auipc %0, 0x7ffff\n la %1, 1b" : "=r"(a), "=r"(b));
    print_hex("auipc 0x7ffff - label", a - b);

    /* jal/jalr: link values relative to the jump, jalr clears bit 0 of the target. */
    __asm__ volatile("1: jal %0, 2f\n nop\n 2: la %1, 1b" : "=r"(a), "=r"(b));
    print_hex("jal link - pc", a - b);
    __asm__ volatile("la t0, 2f\n addi t0, t0, 1\n 1: jalr %0, 0(t0)\n nop\n nop\n 2: la %1, 1b"
                     : "=r"(a), "=r"(b)::"t0");
    print_hex("jalr odd target link - pc", a - b);
    __asm__ volatile("la t0, 2f\n addi t0, t0, -8\n 1: jalr %0, 8(t0)\n nop\n 2: la %1, 1b" : "=r"(a), "=r"(b)::"t0");
    print_hex("jalr offset link - pc", a - b);
    __asm__ volatile("la %0, 1f\n 2: jalr %0, 0(%0)\n nop\n 1: la %1, 2b" : "=&r"(a), "=r"(b));
    print_hex("jalr rd==rs1 link - pc", a - b);

    /* Branch outcomes as bit masks over all operand pairs. */
#define BR(op)                                                                                      \
    do {                                                                                            \
        uint64_t m = 0;                                                                             \
        for (unsigned i = 0; i < 8; i++)                                                            \
            for (unsigned j = 0; j < 8; j++) {                                                      \
                uint64_t t;                                                                         \
                __asm__ volatile("li %0, 1\n " op " %1, %2, 1f\n li %0, 0\n 1:"                     \
                                 : "=&r"(t) : "r"(VALS[i]), "r"(VALS[j]));                          \
                m |= t << (i * 8 + j);                                                              \
            }                                                                                       \
        print_hex(op " taken mask", m);                                                             \
    } while (0)
    BR("beq");
    BR("bne");
    BR("blt");
    BR("bge");
    BR("bltu");
    BR("bgeu");

    fill();
    dump("initial");
    printf("lb %lx %lx\n", LOAD("lb", 0), LOAD("lb", 9));
    printf("lbu %lx %lx\n", LOAD("lbu", 0), LOAD("lbu", 9));
    printf("lh %lx %lx\n", LOAD("lh", 0), LOAD("lh", 18));
    printf("lhu %lx %lx\n", LOAD("lhu", 0), LOAD("lhu", 18));
    printf("lw %lx %lx\n", LOAD("lw", 0), LOAD("lw", 20));
    printf("lwu %lx %lx\n", LOAD("lwu", 0), LOAD("lwu", 20));
    printf("ld %lx %lx\n", LOAD("ld", 0), LOAD("ld", 24));
    STORE("sb", 0x1122334455667788ULL, mem, 1);
    STORE("sh", 0x1122334455667788ULL, mem, 2);
    STORE("sw", 0x1122334455667788ULL, mem, 4);
    STORE("sd", 0x1122334455667788ULL, mem, 8);
    dump("after aligned stores");
    fill();
    puts_("misaligned:\n");
    printf("lh@1 %lx lhu@3 %lx\n", LOAD("lh", 1), LOAD("lhu", 3));
    printf("lw@1 %lx lw@2 %lx lwu@3 %lx\n", LOAD("lw", 1), LOAD("lw", 2), LOAD("lwu", 3));
    printf("ld@1 %lx ld@4 %lx ld@7 %lx\n", LOAD("ld", 1), LOAD("ld", 4), LOAD("ld", 7));
    STORE("sh", 0xaabbccddeeff0011ULL, mem, 1);
    STORE("sw", 0xaabbccddeeff0011ULL, mem, 5);
    STORE("sd", 0xaabbccddeeff0011ULL, mem, 11);
    dump("after misaligned stores");
    /* Stores to x0-based and loads into x0 are harmless. */
    __asm__ volatile("lw x0, 0(%0)" ::"r"(mem));
    __asm__ volatile("addi x0, x0, 5\n mv %0, x0" : "=r"(r));
    print_hex("x0 after writes", r);
    print_hex("traps", trap_count);
    puts_("rv64i done\n");
    return 0;
}
