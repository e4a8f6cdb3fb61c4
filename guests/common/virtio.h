/* virtio-mmio (modern interface, version 2) register offsets, status and feature bits, and
   descriptor flags, at QEMU virt's transport slots: shared by the virtio test guests. */
#ifndef VIRTIO_H
#define VIRTIO_H

#include "guest.h"

#define CONFIG_GENERATION 0x0fc
#define CONFIG 0x100
#define MMIO16(a) (*(volatile uint16_t *)(uintptr_t)(a))

#define VIRTIO_BASE 0x10001000UL
#define SLOT(i) (VIRTIO_BASE + 0x1000UL * (i))
#define R(base, off) MMIO32((base) + (off))

#define MAGIC 0x000
#define VERSION 0x004
#define DEVICE_ID 0x008
#define VENDOR_ID 0x00c
#define DEVICE_FEATURES 0x010
#define DEVICE_FEATURES_SEL 0x014
#define DRIVER_FEATURES 0x020
#define DRIVER_FEATURES_SEL 0x024
#define QUEUE_SEL 0x030
#define QUEUE_NUM_MAX 0x034
#define QUEUE_NUM 0x038
#define QUEUE_READY 0x044
#define QUEUE_NOTIFY 0x050
#define INTERRUPT_STATUS 0x060
#define INTERRUPT_ACK 0x064
#define STATUS 0x070
#define QUEUE_DESC_LOW 0x080
#define QUEUE_DESC_HIGH 0x084
#define QUEUE_DRIVER_LOW 0x090
#define QUEUE_DRIVER_HIGH 0x094
#define QUEUE_DEVICE_LOW 0x0a0
#define QUEUE_DEVICE_HIGH 0x0a4

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40

#define F_INDIRECT (1u << 28)
#define F_EVENT_IDX (1u << 29)

#define D_NEXT 1
#define D_WRITE 2
#define D_INDIRECT 4

#endif
