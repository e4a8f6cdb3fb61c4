/* FDT walker for the SMP guests: counts /cpus/cpu@* nodes (no timeouts: the device tree is the
   only source of the hart count). Every offset is checked against the header's sizes, so a bad
   a1 gives -1 rather than a wild read past the blob. */
#include "fdt.h"

#define FDT_MAGIC 0xd00dfeedu
#define FDT_BEGIN_NODE 1u
#define FDT_END_NODE 2u
#define FDT_PROP 3u
#define FDT_NOP 4u
#define FDT_END 9u
/* Bigger than any tree QEMU or rewind builds for the virt board; a larger totalsize means a1 is junk. */
#define FDT_MAX_SIZE (1u << 20)

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Whether the NUL-terminated string at s (at most n bytes available) equals want. */
static int str_is(const uint8_t *s, uint32_t n, const char *want)
{
    uint32_t i = 0;
    for (; want[i]; i++)
        if (i >= n || s[i] != (uint8_t)want[i])
            return 0;
    return i < n && s[i] == 0;
}

/* Whether the NUL-terminated string at s (at most n bytes) starts with prefix. */
static int str_starts(const uint8_t *s, uint32_t n, const char *prefix)
{
    for (uint32_t i = 0; prefix[i]; i++)
        if (i >= n || s[i] != (uint8_t)prefix[i])
            return 0;
    return 1;
}

int fdt_count_cpus(const void *fdt, uint64_t *hart_mask)
{
    const uint8_t *b = fdt;
    *hart_mask = 0;
    if (!b || ((uintptr_t)b & 3) || be32(b) != FDT_MAGIC)
        return -1;
    uint32_t total = be32(b + 4), off_struct = be32(b + 8), off_strings = be32(b + 12);
    uint32_t size_strings = be32(b + 32), size_struct = be32(b + 36);
    if (total > FDT_MAX_SIZE || off_struct > total || size_struct > total - off_struct ||
        off_strings > total || size_strings > total - off_strings || (off_struct & 3))
        return -1;
    const uint8_t *s = b + off_struct, *strings = b + off_strings;
    uint32_t pos = 0, depth = 0;
    int in_cpus = 0, in_cpu = 0, is_cpu = 0, okay = 1, count = 0;
    uint32_t reg = ~0u;
    while (pos + 4 <= size_struct) {
        uint32_t tok = be32(s + pos);
        pos += 4;
        if (tok == FDT_BEGIN_NODE) {
            const uint8_t *name = s + pos;
            uint32_t avail = size_struct - pos, len = 0;
            while (len < avail && name[len])
                len++;
            if (len == avail)
                return -1;
            pos += (len + 1 + 3) & ~3u;
            depth++;
            /* depth 1 = root, 2 = /cpus, 3 = /cpus/cpu@N */
            if (depth == 2 && str_is(name, avail, "cpus"))
                in_cpus = 1;
            else if (depth == 3 && in_cpus && str_starts(name, avail, "cpu@")) {
                in_cpu = 1;
                is_cpu = 0;
                okay = 1;
                reg = ~0u;
            }
        } else if (tok == FDT_END_NODE) {
            if (depth == 0)
                return -1;
            if (depth == 3 && in_cpu) {
                if (is_cpu && okay) {
                    count++;
                    if (reg < 64)
                        *hart_mask |= 1ull << reg;
                }
                in_cpu = 0;
            } else if (depth == 2)
                in_cpus = 0;
            depth--;
        } else if (tok == FDT_PROP) {
            if (pos + 8 > size_struct)
                return -1;
            uint32_t len = be32(s + pos), nameoff = be32(s + pos + 4);
            pos += 8;
            if (len > size_struct - pos || nameoff >= size_strings)
                return -1;
            const uint8_t *val = s + pos;
            const uint8_t *pname = strings + nameoff;
            uint32_t pavail = size_strings - nameoff;
            if (depth == 3 && in_cpu) {
                if (str_is(pname, pavail, "device_type"))
                    is_cpu = str_is(val, len, "cpu");
                else if (str_is(pname, pavail, "status"))
                    okay = str_is(val, len, "okay") || str_is(val, len, "ok");
                else if (str_is(pname, pavail, "reg") && len >= 4)
                    reg = be32(val + len - 4); /* the low cell: hart ids fit in 32 bits */
            }
            pos += (len + 3) & ~3u;
        } else if (tok == FDT_NOP) {
            continue;
        } else if (tok == FDT_END) {
            return depth == 0 ? count : -1;
        } else {
            return -1;
        }
    }
    return -1;
}
