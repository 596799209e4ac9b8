// Package sysctl reads and writes the Linux IPv6 IOAM sysctls with range
// checks, so a bad value fails with an error naming the key and the allowed
// range instead of the kernel's bare EINVAL.
//
// Keys (Documentation/networking/ioam6-sysctl.rst, net/ipv6/sysctl_net_ipv6.c,
// net/ipv6/addrconf.c; IOAM needs Linux 5.15+, CONFIG_IPV6_IOAM6 is implied by
// CONFIG_IPV6):
//
//	net.ipv6.ioam6_id                    node id, 24 bits (default 0xFFFFFF)
//	net.ipv6.ioam6_id_wide               wide node id, 56 bits (default 0xFFFFFFFFFFFFFF)
//	net.ipv6.conf.<if>.ioam6_enabled     0/1: process IOAM on packets entering <if>
//	net.ipv6.conf.<if>.ioam6_id          interface id, 16 bits (default 0xFFFF)
//	net.ipv6.conf.<if>.ioam6_id_wide     wide interface id, 32 bits (default 0xFFFFFFFF)
//	net.ipv6.conf.<if>.forwarding        0/1 (<if> may be "all")
//	net.ipv6.conf.<if>.accept_dad        0..2 (<if> may be "default")
//	net.ipv6.max_hbh_opts_number         non-padding HBH options accepted (default 8)
//	net.ipv6.max_hbh_length              HBH bytes accepted (default INT_MAX)
//
// # Network namespaces
//
// Every key is per network namespace. Linux resolves /proc/sys/net against the
// network namespace of the thread that opens the file (current->nsproxy), not
// the process, so a call acts on the netns of the calling OS thread. To act on
// another namespace, call these functions on a goroutine locked to an OS
// thread that has joined it (runtime.LockOSThread + setns; see
// ioam6nl.RunInNetNS and netnstest's Node.Do). TestIntegrationPerThreadNetNS
// checks this behaviour.
//
// Reading needs no privilege; writing needs CAP_NET_ADMIN in the user
// namespace owning the network namespace (root in practice).
package sysctl
