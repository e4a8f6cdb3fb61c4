/* rv64m: multiply/divide known answers including division by zero and overflow. */
#include "check.h"

int main(void)
{
    puts_("rv64m known answers\n");
    TABLE_RR("mul");
    TABLE_RR("mulh");
    TABLE_RR("mulhsu");
    TABLE_RR("mulhu");
    TABLE_RR("div");
    TABLE_RR("divu");
    TABLE_RR("rem");
    TABLE_RR("remu");
    TABLE_RR("mulw");
    TABLE_RR("divw");
    TABLE_RR("divuw");
    TABLE_RR("remw");
    TABLE_RR("remuw");
    /* Named corner cases, so a failure is easy to read. */
    print_hex("div by zero", ASM_RR("div", 42, 0));
    print_hex("divu by zero", ASM_RR("divu", 42, 0));
    print_hex("rem by zero", ASM_RR("rem", 42, 0));
    print_hex("remu by zero", ASM_RR("remu", 42, 0));
    print_hex("div overflow", ASM_RR("div", 0x8000000000000000ULL, -1));
    print_hex("rem overflow", ASM_RR("rem", 0x8000000000000000ULL, -1));
    print_hex("divw overflow", ASM_RR("divw", 0xffffffff80000000ULL, -1));
    print_hex("remw overflow", ASM_RR("remw", 0xffffffff80000000ULL, -1));
    print_hex("divw by zero", ASM_RR("divw", 0x1234567880000000ULL, 0x100000000ULL));
    print_hex("remw by zero", ASM_RR("remw", 0x1234567880000000ULL, 0x100000000ULL));
    print_hex("divuw by zero", ASM_RR("divuw", 0x1234567880000000ULL, 0));
    print_hex("remuw by zero", ASM_RR("remuw", 0x1234567880000000ULL, 0));
    print_hex("div -7/2", ASM_RR("div", -7, 2));
    print_hex("rem -7/2", ASM_RR("rem", -7, 2));
    puts_("rv64m done\n");
    return 0;
}
