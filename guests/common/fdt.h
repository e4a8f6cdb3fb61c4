/* A small flattened-device-tree walker: enough to count the harts QEMU/rewind describe. */
#ifndef FDT_H
#define FDT_H
#include <stdint.h>

/* The cpus under /cpus (nodes cpu@*, device_type "cpu", status absent or "okay") of the FDT at fdt.
   Returns their number and sets *hart_mask to the set of their reg values (hart ids below 64);
   returns -1 if fdt is not a well-formed FDT. */
int fdt_count_cpus(const void *fdt, uint64_t *hart_mask);

#endif
