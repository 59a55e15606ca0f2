/**
 * Numbers of the proc connector, named once next to the kernel header each
 * comes from. Offsets are within one netlink message; all fields are in host
 * byte order (little-endian on every architecture Bun ships for Linux).
 */

// <linux/socket.h>, <linux/netlink.h>
export const AF_NETLINK = 16;
export const NETLINK_CONNECTOR = 11;
export const SOCKADDR_NL_SIZE = 12; // sa_family u16, pad u16, nl_pid u32, nl_groups u32
/** sockaddr_nl.nl_pid: the sender's port, 0 for the kernel, set by the kernel (a sender cannot forge it). */
export const SOCKADDR_NL_PORT = 4;
// <linux/net.h>, <asm-generic/fcntl.h> (x86_64, arm64: same values)
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

// <linux/netlink.h>: join a multicast group after the socket filter is in place.
export const SOL_NETLINK = 270;
export const NETLINK_ADD_MEMBERSHIP = 1;

// <asm-generic/socket.h>
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
/** Like SO_RCVBUF but ignores net.core.rmem_max; needs CAP_NET_ADMIN. */
export const SO_RCVBUFFORCE = 33;
/** Attach a classic BPF program (struct sock_fprog, <linux/filter.h>). */
export const SO_ATTACH_FILTER = 26;

// <linux/netlink.h> struct nlmsghdr
export const NLMSG_HDRLEN = 16;
export const NLMSG_LEN = 0; // u32, header included
export const NLMSG_TYPE = 4; // u16
export const NLMSG_FLAGS = 6; // u16
export const NLMSG_SEQ = 8; // u32
export const NLMSG_PID = 12; // u32, sender port: 0 for the kernel
export const NLMSG_ALIGNTO = 4;
export const NLMSG_DONE = 3; // the type the connector puts on every message

// <linux/connector.h> struct cn_msg, right after the nlmsghdr
export const CN_MSG_SIZE = 20;
export const CN_IDX = 0; // u32 cb_id.idx
export const CN_VAL = 4; // u32 cb_id.val
export const CN_SEQ = 8; // u32
export const CN_ACK = 12; // u32
export const CN_LEN = 16; // u16 payload length
export const CN_FLAGS = 18; // u16
export const CN_IDX_PROC = 1;
export const CN_VAL_PROC = 1;

// <linux/cn_proc.h> enum proc_cn_mcast_op; struct proc_input (6.6+) is
// { u32 mcast_op; u32 event_type; }, older kernels take the bare u32 op.
export const PROC_CN_MCAST_LISTEN = 1;
export const PROC_CN_MCAST_IGNORE = 2;

// <linux/cn_proc.h> enum what
export const PROC_EVENT_NONE = 0x00000000; // the subscription ack
export const PROC_EVENT_FORK = 0x00000001;
export const PROC_EVENT_EXIT = 0x80000000;

// <linux/cn_proc.h> struct proc_event, right after the cn_msg
export const PROC_EVENT_WHAT = 0; // u32
export const PROC_EVENT_CPU = 4; // u32
export const PROC_EVENT_TIMESTAMP = 8; // u64, ktime_get_ns(): CLOCK_MONOTONIC
export const PROC_EVENT_DATA = 16; // the event_data union
/** The fixed part read for any event; the union is up to 24 bytes. */
export const PROC_EVENT_HEADER_SIZE = 16;
// event_data.ack
export const ACK_ERR = 0; // u32, a positive errno (EPERM on kernels before 6.6 without CAP_NET_ADMIN)
// event_data.fork
export const FORK_PARENT_PID = 0;
export const FORK_PARENT_TGID = 4;
export const FORK_CHILD_PID = 8;
export const FORK_CHILD_TGID = 12;
export const FORK_SIZE = 16;
// event_data.exit
export const EXIT_PROCESS_PID = 0;
export const EXIT_PROCESS_TGID = 4;
export const EXIT_CODE = 8; // wait status form: 768 = exit(3)
export const EXIT_SIGNAL = 12;
export const EXIT_PARENT_PID = 16;
export const EXIT_PARENT_TGID = 20;
export const EXIT_SIZE = 24;

/** Where the proc_event starts in a datagram. */
export const PROC_EVENT_OFFSET = NLMSG_HDRLEN + CN_MSG_SIZE;
