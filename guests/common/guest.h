/* Common support for rewind's bare-metal guests (virt board, M-mode from reset). */
#ifndef GUEST_H
#define GUEST_H
#include <stdint.h>
#include <stddef.h>
#include "trapframe.h"

#define UART_BASE 0x10000000UL
#define FINISHER_BASE 0x100000UL
#define CLINT_BASE 0x2000000UL
#define CLINT_MSIP (CLINT_BASE + 0x0)
#define CLINT_MTIMECMP (CLINT_BASE + 0x4000)
#define CLINT_MTIME (CLINT_BASE + 0xbff8)
#define PLIC_BASE 0xc000000UL

#define MMIO8(a) (*(volatile uint8_t *)(uintptr_t)(a))
#define MMIO32(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define MMIO64(a) (*(volatile uint64_t *)(uintptr_t)(a))

#define read_csr(reg) ({ uint64_t __v; __asm__ volatile("csrr %0, " #reg : "=r"(__v)); __v; })
#define write_csr(reg, val) __asm__ volatile("csrw " #reg ", %0" ::"rK"((uint64_t)(val)))
#define set_csr(reg, bits) __asm__ volatile("csrs " #reg ", %0" ::"rK"((uint64_t)(bits)))
#define clear_csr(reg, bits) __asm__ volatile("csrc " #reg ", %0" ::"rK"((uint64_t)(bits)))
#define swap_csr(reg, val) ({ uint64_t __v; __asm__ volatile("csrrw %0, " #reg ", %1" : "=r"(__v) : "rK"((uint64_t)(val))); __v; })

#define MSTATUS_SIE (1UL << 1)
#define MSTATUS_MIE (1UL << 3)
#define MSTATUS_SPIE (1UL << 5)
#define MSTATUS_MPIE (1UL << 7)
#define MSTATUS_SPP (1UL << 8)
#define MSTATUS_MPP (3UL << 11)
#define MSTATUS_FS (3UL << 13)
#define MSTATUS_MPRV (1UL << 17)
#define MSTATUS_SUM (1UL << 18)
#define MSTATUS_MXR (1UL << 19)
#define MIP_SSIP (1UL << 1)
#define MIP_MSIP (1UL << 3)
#define MIP_STIP (1UL << 5)
#define MIP_MTIP (1UL << 7)
#define MIP_SEIP (1UL << 9)
#define MIP_MEIP (1UL << 11)
#define CAUSE_INTR (1UL << 63)

/* UART (NS16550A, polled). */
void uart_init(void);
void uart_putc(char c);
int uart_getc(void); /* blocking */
int uart_try_getc(void); /* -1 if nothing */
void puts_(const char *s);
/* Minimal printf: %c %s %d %u %x %lx %ld %lu %llx %p, width and 0-padding. */
int printf(const char *fmt, ...);
void put_hex(uint64_t v); /* 0x%016lx */
void print_hex(const char *label, uint64_t v); /* "label: 0x%016lx\n" */

/* Finisher: code 0 = pass, otherwise fail with that exit status. */
void exit(int code) __attribute__((noreturn));

/* Trap handlers (weak defaults print the trap and fail). */
void mtrap_handler(struct trap_frame *f);
void strap_handler(struct trap_frame *f);
extern void mtrap_entry(void);
extern void strap_entry(void);

/* Run fn(arg) in a lower mode (0 = U, 1 = S) and come back to M when it returns. M trap handlers must
   call lower_return(f) first (it recognises the exit ecall); an S handler that receives the U exit ecall
   calls lower_exit_from_s(). */
uint64_t run_lower(unsigned mode, uint64_t (*fn)(uint64_t), uint64_t arg);
int lower_return(struct trap_frame *f);
void lower_exit_from_s(void);

/* CLINT helpers. */
static inline uint64_t clint_mtime(void) { return MMIO64(CLINT_MTIME); }
static inline void clint_set_mtimecmp(uint64_t v) { MMIO64(CLINT_MTIMECMP) = v; }

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

/* Length of an instruction at addr (2 or 4), for skipping a faulting one. */
static inline int insn_len(uint64_t addr) { return ((*(volatile uint16_t *)addr) & 3) == 3 ? 4 : 2; }

#endif
